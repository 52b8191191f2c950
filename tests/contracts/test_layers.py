"""The import graph of ``src/trimkit`` follows the layers ARCHITECTURE.md draws: a module
imports only from its own layer or the ones below (function-level imports included), and
no two packages import each other, directly or around a circle."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "src" / "trimkit"

#: bottom to top; a part of trimkit is its package (``prune``) or root module (``_masks``)
LAYERS: list[tuple[str, ...]] = [
    ("errors", "_registry", "_options", "_lazy", "_urls", "_atomic", "_outputs", "_device", "_threads", "_progress",
     "_running", "_inputs", "_cpu"),
    ("record", "_masks", "_shape_edits", "_sparse_size", "_sections", "_model_file", "models", "data", "trimkit"),
    ("tracking", "runs"),
    ("tasks",),
    ("train", "export", "measure"),
    ("prune", "quant", "distill", "deploy"),
    ("pipeline", "report"),
    ("search",),
    ("cli",),
]
LAYER = {part: level for level, parts in enumerate(LAYERS) for part in parts}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "trimkit"


def imports() -> dict[str, set[str]]:
    """Each module of trimkit -> the trimkit modules it imports, anywhere in its body."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in SOURCE.rglob("*.py"):
        module = _module_name(path)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found[module].update(a.name for a in node.names if a.name.startswith("trimkit"))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                if base.startswith("trimkit"):
                    found[module].add(base)
                    # ``from trimkit import prune`` imports the subpackage
                    found[module].update(f"{base}.{a.name}" for a in node.names
                                         if (SOURCE.parent / f"{base}.{a.name}".replace(".", "/")).exists())
    return found


def test_every_part_of_trimkit_has_a_layer():
    parts = {_part(_module_name(path)) for path in SOURCE.rglob("*.py")}
    assert parts - set(LAYER) == set(), "add the new package or module to LAYERS (and to ARCHITECTURE.md)"


def test_no_module_imports_from_a_higher_layer():
    upward = sorted(f"{module} imports {target}" for module, targets in imports().items() for target in targets
                    if LAYER[_part(target)] > LAYER[_part(module)])
    assert upward == []


def test_no_two_packages_import_each_other_even_around_a_circle():
    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in imports().items():
        for target in targets:
            if _part(target) != _part(module) and _part(target) != "trimkit":
                graph[_part(module)].add(_part(target))

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    circles = sorted(part for part in list(graph) if part in reach(part))
    assert circles == [], f"packages on an import circle: {circles}"


@pytest.mark.parametrize("name", ["data", "models", "prune", "quant", "measure", "pipeline", "report", "tasks"])
def test_import_trimkit_then_any_subpackage_works_and_loads_lazily(name):
    import subprocess
    import sys

    probe = (f"import sys, trimkit; before = 'torch' in sys.modules; module = trimkit.{name}; "
             f"print(before, module.__name__)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", f"trimkit.{name}"]
