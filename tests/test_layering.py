"""The package's layers stay clean: checked on the import statements of every module."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ftp_pose.paths import REPO_ROOT

PKG = REPO_ROOT / "ftp_pose"

#: subpackage -> subpackages it must never import
FORBIDDEN = {
    "models": ("ftp_pose.data", "ftp_pose.engine", "ftp_pose.viz", "ftp_pose.metrics"),
    "data": ("ftp_pose.models", "ftp_pose.engine"),
    "metrics": ("ftp_pose.models", "ftp_pose.engine", "ftp_pose.data", "torch"),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports(layer: str) -> None:
    files = sorted((PKG / layer).rglob("*.py"))
    assert files, f"no modules in ftp_pose/{layer}"
    for f in files:
        for name in _imports(f):
            for bad in FORBIDDEN[layer]:
                assert not (name == bad or name.startswith(bad + ".")), \
                    f"{f.relative_to(REPO_ROOT)} imports {name} (ftp_pose.{layer} must not import {bad})"
