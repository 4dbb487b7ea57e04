"""Command line: ``python -m ftp_pose <command> ...``.

Each command lives in the module that does the work; that module defines
``add_cli_arguments(parser)`` and ``run_cli(args) -> int``. This table is the only
place that lists them (imports are lazy, so ``--help`` stays fast).

Known bad input (:class:`ftp_pose.errors.FTPPoseError`: a missing or unreadable file, a bad config
key, a bad checkpoint, a bad data layout) is reported as ONE line on stderr, ``ftp_pose: error:
<message naming the file or field>``, with exit code 2; the global ``--debug`` flag (before the
command) shows the traceback instead. Any other exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

#: command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("ftp_pose.data.synthetic", "render a synthetic PoseTrack-format video set"),
    "show": ("ftp_pose.viz.show", "draw 3-frame samples with heatmaps and skeletons into figures/"),
    "train": ("ftp_pose.engine.train", "train a model (config file + overrides), resumable"),
    "evaluate": ("ftp_pose.engine.evaluate", "run a checkpoint on a set, or score prediction jsons"),
    "bench": ("ftp_pose.bench", "params, GFLOPs, latency and FPS of the variants side by side"),
    "demo": ("ftp_pose.video.demo", "run a checkpoint on a video and write an annotated video"),
    "ablate": ("ftp_pose.experiments.ablate", "reproduce Table II / III by training each configuration (cached)"),
    "gpu-check": ("ftp_pose.experiments.gpu_check", "one-call GPU check of the DPC kernel, CUDA graphs and Table II speed"),
}


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors (an unknown choice, a missing argument) are ONE line on stderr, exit code 2,
    like the known errors; the sub-command parsers inherit it."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m ftp_pose", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or only == name:
            mod = importlib.import_module(module)
            mod.add_cli_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (2 for a known bad input, printed as one line)."""
    from ftp_pose.errors import FTPPoseError, one_line

    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    command = command if command in COMMANDS else None
    parser = build_parser(only=command if command else "__none__")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    if not args.debug:
        # FFmpeg (inside OpenCV) prints its own lines on stderr for a file it cannot decode; the one-line
        # error says it better. Read when OpenCV first opens a video, so set before any command runs.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:
        mod = importlib.import_module(COMMANDS[args.command][0])
        return int(mod.run_cli(args) or 0)
    except FTPPoseError as e:
        if args.debug:
            raise
        print(f"ftp_pose {args.command}: error: {one_line(e, limit=1000)}", file=sys.stderr)
        return 2
