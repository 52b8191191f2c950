"""Evaluate a model again after changes to a few of its layers without recomputing
what comes before them.

The model is traced with torch.fx, treating every module without children as a leaf
(so a layer that pruning edits always runs its live forward). Nodes downstream of
the changed layers are "dirty"; the clean nodes that feed them (the frontier) are
computed once per evaluation batch and kept, and each later evaluation runs only the
dirty nodes. Results equal a full forward pass: the same graph runs.
"""

from __future__ import annotations

import torch
import torch.fx as fx
from torch import nn

from trimkit.prune._evaluation import CachedEvaluation


class _LeafTracer(fx.Tracer):
    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return not list(module.children()) or super().is_leaf_module(module, qualified_name)


def traceable(model: nn.Module) -> fx.GraphModule | None:
    """An fx graph of ``model`` that shares its modules, or None if it cannot be traced."""
    try:
        graph = _LeafTracer().trace(model)
    except Exception:
        return None
    return fx.GraphModule(model, graph)


class SuffixEvaluation:
    """Top-1 of ``module`` on ``evaluation``'s data, recomputing only what depends on
    the modules named in ``changing`` (which the caller edits between calls)."""

    def __init__(self, graph_module: fx.GraphModule, evaluation: CachedEvaluation, changing: set[str]) -> None:
        self.module = graph_module
        self.evaluation = evaluation
        nodes = list(graph_module.graph.nodes)
        dirty: set[fx.Node] = set()
        for node in nodes:
            touches = node.op == "call_module" and any(
                node.target == name or node.target.startswith(name + ".") for name in changing)
            if touches or any(parent in dirty for parent in node.all_input_nodes):
                dirty.add(node)
        self.dirty = [node for node in nodes if node in dirty]
        self.release = self._last_uses(self.dirty)
        frontier = {parent for node in self.dirty for parent in node.all_input_nodes if parent not in dirty}
        with evaluation.running(graph_module):
            self.cache = [self._run_until(frontier, batch.inputs) for batch in evaluation.batches]

    def __call__(self) -> float:
        with self.evaluation.running(self.module):
            return self.evaluation.score(self._run(self.dirty, dict(values)) for values in self.cache)

    @staticmethod
    def _last_uses(order: list[fx.Node]) -> dict[fx.Node, list[fx.Node]]:
        """For each node, the values that no node after it reads: dropping them as soon
        as possible keeps the working set to what a plain forward pass holds (keeping
        every activation of a 500-image batch costs gigabytes and makes each run
        fault in fresh memory, which was slower than the full forward pass)."""
        release: dict[fx.Node, list[fx.Node]] = {node: [] for node in order}
        seen: set[fx.Node] = set()
        for node in reversed(order):
            for parent in node.all_input_nodes:
                if parent not in seen:
                    seen.add(parent)
                    release[node].append(parent)
        return release

    def _run_until(self, wanted: set[fx.Node], inputs: tuple[torch.Tensor, ...]) -> dict[fx.Node, object]:
        env: dict[fx.Node, object] = {}
        remaining = set(wanted)
        placeholders = iter(inputs)
        for node in self.module.graph.nodes:
            if not remaining:
                break
            env[node] = next(placeholders) if node.op == "placeholder" else self._node(node, env)
            remaining.discard(node)
        return {node: env[node] for node in wanted}

    def _run(self, nodes: list[fx.Node], env: dict[fx.Node, object]):
        for node in nodes:
            if node.op == "output":
                return fx.graph.map_arg(node.args[0], lambda n: env[n])
            env[node] = self._node(node, env)
            for value in self.release[node]:
                del env[value]
        raise RuntimeError("the traced graph has no output node")

    def _node(self, node: fx.Node, env: dict[fx.Node, object]):
        args = fx.graph.map_arg(node.args, lambda n: env[n])
        kwargs = fx.graph.map_arg(node.kwargs, lambda n: env[n])
        if node.op == "call_module":
            return self.module.get_submodule(node.target)(*args, **kwargs)
        if node.op == "call_function":
            return node.target(*args, **kwargs)
        if node.op == "call_method":
            return getattr(args[0], node.target)(*args[1:], **kwargs)
        if node.op == "get_attr":
            value = self.module
            for part in node.target.split("."):
                value = getattr(value, part)
            return value
        raise RuntimeError(f"unexpected node {node.op} in a traced model")
