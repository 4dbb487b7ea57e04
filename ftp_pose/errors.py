"""The project's known errors: bad input that a user can fix, each message naming the file or field.

``python -m ftp_pose`` prints such an error as one line on stderr and exits with code 2
(``--debug`` shows the traceback); any other exception is a bug and keeps its traceback.
Each class also derives from the built-in error it refines (``FileNotFoundError`` or
``ValueError``), so ``except ValueError`` around a loader still works.

=======================  ==========================================================
class                    raised for
=======================  ==========================================================
:class:`MissingFileError`     a file or folder that does not exist
:class:`UnreadableFileError`  a file that exists but cannot be decoded (not a video,
                              malformed json, an image OpenCV cannot read)
:class:`CheckpointError`      a truncated or foreign checkpoint, or one whose weights
                              do not fit the model
:class:`ConfigError`          an unknown key or a bad value in a config / ``--set``
:class:`DataLayoutError`      a data file with a missing or malformed field
:class:`OutputPathError`      an output folder that cannot be created (a file in the
                              way, no permission)
=======================  ==========================================================
"""
from __future__ import annotations


class FTPPoseError(Exception):
    """Base of the project's user-facing errors (the message is one line naming the file/field)."""


class MissingFileError(FTPPoseError, FileNotFoundError):
    """A file or folder given on the command line or in a config does not exist."""


class UnreadableFileError(FTPPoseError, ValueError):
    """A file exists but cannot be decoded (not a video, malformed json, undecodable image)."""


class CheckpointError(FTPPoseError, ValueError):
    """A checkpoint that cannot be loaded: truncated, not written by ftp_pose, or not fitting the model."""


class ConfigError(FTPPoseError, ValueError):
    """A bad key or value in a training config (the message names the key and the source)."""


class DataLayoutError(FTPPoseError, ValueError):
    """A data file (annotations, detections, boxes) with a missing or malformed field."""


class OutputPathError(FTPPoseError, OSError):
    """An output folder that cannot be created (a file stands in its path, or no permission)."""


def one_line(text: object, limit: int = 300) -> str:
    """``text`` as a single line (first non-empty line, at most ``limit`` characters)."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    line = lines[0] if lines else type(text).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."
