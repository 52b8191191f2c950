"""Header sections of model files: pruning edits and quantisation plans round-trip in
order, format-1 files still load, unknown sections are refused, and ``_model_file``
does not import ``trimkit.quant`` (nor Brevitas) to do it."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

import trimkit
from trimkit import models, quant
from trimkit._shape_edits import edits_of
from trimkit.errors import TrimkitError
from trimkit.prune import structured

SOURCE = Path(__file__).resolve().parents[2] / "src" / "trimkit"


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _section_names(path: Path) -> list[str]:
    return [section["name"] for section in trimkit.read_header(path)["sections"]]


@pytest.fixture(scope="module")
def examples() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(2, 1, 28, 28)


@pytest.fixture(scope="module")
def pruned(examples) -> nn.Module:
    torch.manual_seed(0)
    return structured(models.create("lenet5"), examples, ratio=0.5).model.eval()


@pytest.fixture(scope="module")
def quantised(pruned, examples) -> nn.Module:
    return quant.quantize(pruned, "int8", example_inputs=examples).eval()


def test_a_pruned_model_round_trips_with_an_edits_section(pruned, examples, tmp_path):
    path = trimkit.save(pruned, tmp_path / "pruned.pt")
    loaded = trimkit.load(path).eval()
    assert _same_state(pruned, loaded)
    assert _section_names(path) == ["edits"]
    assert trimkit.read_header(path)["format_version"] == 2
    with torch.no_grad():
        assert torch.equal(pruned(examples), loaded(examples))


def test_a_quantised_pruned_model_round_trips_with_both_sections_in_order(quantised, examples, tmp_path):
    path = trimkit.save(quantised, tmp_path / "quantised.pt")
    loaded = trimkit.load(path).eval()
    assert _section_names(path) == ["edits", "quantization"]
    assert _same_state(quantised, loaded)
    assert quant.plan_of(loaded) == quant.plan_of(quantised)
    with torch.no_grad():
        assert torch.equal(quantised(examples), loaded(examples))


def test_read_header_also_gives_each_section_under_its_name(quantised, tmp_path):
    header = trimkit.read_header(trimkit.save(quantised, tmp_path / "quantised.pt"))
    assert header["quantization"] == quant.plan_of(quantised).to_dict()
    assert header["edits"] == json.loads(json.dumps(edits_of(quantised)))


@pytest.mark.parametrize("which", ["pruned", "quantised"])
def test_a_format_1_file_still_loads_bit_exactly(which, request, examples, tmp_path):
    model = request.getfixturevalue(which)
    plan = quant.plan_of(model)
    header = {
        "format": "trimkit-model", "format_version": 1, "trimkit_version": "0.1.0",
        "model": {"name": "lenet5", "kwargs": {}}, "input_shape": [1, 28, 28],
        "normalization": [[0.1307], [0.3081]],
        "edits": edits_of(model), "quantization": None if plan is None else plan.to_dict(), "metadata": {},
    }
    path = tmp_path / "v1.pt"
    torch.save({"trimkit_header": json.dumps(header), "state_dict": model.state_dict()}, path)
    loaded = trimkit.load(path).eval()
    assert _same_state(model, loaded)
    with torch.no_grad():
        assert torch.equal(model(examples), loaded(examples))
    expected = ["edits"] if plan is None else ["edits", "quantization"]
    assert _section_names(path) == expected


def test_an_unknown_section_is_refused_in_one_line(pruned, tmp_path):
    path = trimkit.save(pruned, tmp_path / "m.pt")
    content = torch.load(path, weights_only=True)
    header = json.loads(content["trimkit_header"])
    header["sections"].append({"name": "sparkles", "data": {"shine": 1}})
    content["trimkit_header"] = json.dumps(header)
    torch.save(content, path)
    with pytest.raises(TrimkitError) as raised:
        trimkit.load(path)
    assert str(raised.value) == (
        f"{path} has header section 'sparkles', which this trimkit does not know; upgrade trimkit"
    )
    assert _section_names(path) == ["edits", "sparkles"]  # reading the header alone still works


def test_importing_the_model_file_module_loads_neither_quant_nor_brevitas():
    code = "import trimkit._model_file, sys; print('trimkit.quant' in sys.modules, 'brevitas' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports a module runs when it is imported: not those inside functions, nor
    under ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            for statement in child.orelse:
                yield from _top_level_imports(statement)
        else:
            yield from _top_level_imports(child)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> list[str]:
    """The trimkit modules an import statement names: ``from trimkit import models``
    names the subpackage ``trimkit.models``, ``from trimkit import save`` the root."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "trimkit"]
    base = node.module or ""
    if node.level:
        package = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
        base = ".".join(package + ([base] if base else []))
    if base.split(".")[0] != "trimkit":
        return []
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]


def _unit(module: str) -> str:
    """The package a module belongs to for the graph: ``trimkit.quant._convert`` is
    ``trimkit.quant``, ``trimkit._model_file`` itself, the root ``trimkit``."""
    return ".".join(module.split(".")[:2])


@pytest.fixture(scope="module")
def trees() -> dict[str, tuple[ast.Module, bool]]:
    return {_module_name(path): (ast.parse(path.read_text(), str(path)), path.name == "__init__.py")
            for path in SOURCE.rglob("*.py")}


def test_the_model_file_module_does_not_import_quant_at_module_level(trees):
    known = set(trees)
    graph: dict[str, set[str]] = {}
    for module, (tree, is_package) in trees.items():
        for node in _top_level_imports(tree):
            for target in _targets(node, module, is_package, known):
                if _unit(target) != _unit(module):
                    graph.setdefault(_unit(module), set()).add(_unit(target))
    assert "trimkit._model_file" in graph["trimkit.quant"]  # the graph sees quant._workflow's import of save
    paths = {"trimkit._model_file": ["trimkit._model_file"]}
    pending = ["trimkit._model_file"]
    while pending:
        current = pending.pop()
        for target in sorted(graph.get(current, ())):
            if target not in paths:
                paths[target] = [*paths[current], target]
                pending.append(target)
    assert "trimkit.quant" not in paths, f"import cycle: {' -> '.join(paths['trimkit.quant'])} -> trimkit._model_file"


def test_quant_never_imports_the_package_root(trees):
    known = set(trees)
    offenders = []
    for module, (tree, is_package) in trees.items():
        if _unit(module) != "trimkit.quant":
            continue
        imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
        offenders += [f"{module}: {ast.unparse(node)}" for node in imports
                      if "trimkit" in _targets(node, module, is_package, known)]
    assert not offenders, offenders
