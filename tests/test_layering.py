"""The package's layers stay clean: checked on the import statements of every module.

Every import counts, at the top of a file or inside a function.
"""
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
    # viz draws; it never trains
    "viz": ("ftp_pose.engine.train", "ftp_pose.experiments", "torch.optim"),
    # engine trains, evaluates and keeps checkpoints: the video demo and the experiments sit on top
    "engine": ("ftp_pose.video", "ftp_pose.experiments", "ftp_pose.viz.explorer"),
    "video": ("ftp_pose.experiments",),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)  # from torch import optim
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


ENGINE = "ftp_pose.engine"


def _engine_graph() -> dict[str, set[str]]:
    """engine module -> the engine modules it imports anywhere in its file (``ftp_pose.engine`` = __init__)."""
    modules = {f.stem: f for f in (PKG / "engine").glob("*.py")}
    name = {stem: ENGINE if stem == "__init__" else f"{ENGINE}.{stem}" for stem in modules}
    graph: dict[str, set[str]] = {}
    for stem, f in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name.startswith(ENGINE + "."))
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == ENGINE:
                # from ftp_pose.engine import distributed (a module) / quick_checkpoint (from __init__)
                edges.update(f"{ENGINE}.{a.name}" if a.name in modules else ENGINE for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith(ENGINE + "."):
                edges.add(node.module)
        graph[name[stem]] = edges - {name[stem]}
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path ``[a, b, ..., a]``, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_engine_imports_have_no_cycles() -> None:
    graph = _engine_graph()
    assert f"{ENGINE}.train" in graph and f"{ENGINE}.inference" in graph
    assert f"{ENGINE}.builders" in graph[f"{ENGINE}.train"]  # function-level imports are seen too
    cycle = _find_cycle(graph)
    assert cycle is None, f"ftp_pose/engine modules import each other in a cycle: {' -> '.join(cycle)}"


def test_package_map_in_readme_matches_the_tree() -> None:
    """Every subpackage and top-level module of ftp_pose/ is named in the README's package map."""
    block = (REPO_ROOT / "README.md").read_text().split("## Package map", 1)[1].split("```", 2)[1]
    import re

    # the first column of each entry: "  paths.py, io.py     what they hold" -> {"paths.py", "io.py"}
    first_words = {w for line in block.splitlines() if line.startswith("  ") and not line.startswith("   ")
                   for w in re.split(r"\s{2,}", line.strip())[0].split(", ")}
    names = {f"{p.name}/" for p in PKG.iterdir() if (p / "__init__.py").exists()}
    names |= {p.name for p in PKG.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    missing = sorted(names - first_words)
    assert not missing, f"missing from the README's package map: {missing}"
    assert not list((REPO_ROOT / "tools").rglob("*.py")), \
        "tools/ holds scripts again: commands live in the package (python -m ftp_pose ...)"


def test_clip_layout_is_neutral() -> None:
    """ftp_pose/clip.py is shared by data and models, so it imports nothing from the package."""
    assert not {n for n in _imports(PKG / "clip.py") if n.startswith("ftp_pose")}


def test_library_code_never_switches_the_matplotlib_backend() -> None:
    # matplotlib.use(...) inside the package turns a running notebook's inline backend off;
    # figures are drawn on a Figure with its own Agg canvas instead
    import re
    from pathlib import Path

    import ftp_pose

    root = Path(ftp_pose.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if re.search(r"\bmatplotlib\.use\(|\bplt\.switch_backend\(", p.read_text())]
    assert not offenders, f"modules that switch the matplotlib backend: {offenders}"
