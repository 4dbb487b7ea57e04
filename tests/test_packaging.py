"""The two install routes (pip via pyproject.toml, conda via environment.yml) pin the same packages."""
from __future__ import annotations

import tomllib

import yaml

from ftp_pose.paths import REPO_ROOT


def _pyproject_pins() -> set[str]:
    meta = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pins = set(meta["dependencies"])
    for extra in meta.get("optional-dependencies", {}).values():
        pins |= set(extra)
    return pins


def _conda_pins() -> set[str]:
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = [d for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert pip_section, "environment.yml has no pip: section"
    return set(pip_section[0]["pip"])


def test_every_dependency_is_pinned() -> None:
    for pin in _pyproject_pins():
        assert "==" in pin, f"pyproject.toml dependency {pin!r} is not pinned"


def test_conda_and_pip_pin_the_same_versions() -> None:
    assert _pyproject_pins() == _conda_pins()


def test_cli_lists_every_command() -> None:
    from ftp_pose.cli import COMMANDS, build_parser

    help_text = build_parser(only="__none__").format_help()
    for name in COMMANDS:
        assert name in help_text


def test_atomic_write_leaves_no_temp_file_and_usual_permissions(tmp_path) -> None:
    import stat

    import pytest

    from ftp_pose.io import atomic_write, read_json, write_json

    out = write_json(tmp_path / "a.json", {"x": 1})
    assert read_json(out) == {"x": 1}
    assert stat.S_IMODE(out.stat().st_mode) & 0o044, "file readable only by its owner"

    def broken(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "b.json", broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
