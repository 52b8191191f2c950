"""Dead neurons and filters of a masked model, removed for real by the verified surgery.

A channel is dead when its masks left it

- without outputs: every conv and dense layer that reads it has only zero weights for
  it, so removing it changes nothing; or
- without inputs: every layer that produces it has only zero weights for it, so it
  carries a constant (its bias, or a batch norm's shift, after the activation). The
  constant is folded into what reads it (the reader's bias, or the running mean of the
  batch norm after a reader without bias) and the channel removed. Folding is exact
  only where the constant reaches the reader unchanged at every position: a
  convolution that pads with zeros sees zeros, not the constant, at its borders, so a
  non-zero constant before such a convolution keeps its channel (reported in ``kept``).

Each removal is one cut of :class:`~trimkit.prune._session.PruningSession`, checked
against the original with the channel zeroed (and the same folds made), so the smaller
model computes what the masked one did. Removing channels can leave others dead, so the
search repeats until a round removes nothing.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from trimkit._inputs import ExampleInputs, as_input_tuple
from trimkit._running import eval_mode
from trimkit.prune._graph import WEIGHT_LAYERS, ChannelGroup, Member
from trimkit.prune._result import FrozenGroup, LayerChange
from trimkit.prune._session import PruningSession

MAX_ROUNDS = 50
CONSTANT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class KeptDead:
    """A dead channel left in place, and why."""

    group: str
    channel: int
    reason: str


@dataclass
class DeadRemoval:
    """The masked model with its dead channels removed (``model``), parameter counts
    before and after, channels per layer, and the dead channels that had to stay."""

    model: nn.Module
    params_before: int
    params_after: int
    nonzero_before: int
    nonzero_after: int
    layers: dict[str, LayerChange] = field(default_factory=dict)
    kept: list[KeptDead] = field(default_factory=list)
    frozen: list[FrozenGroup] = field(default_factory=list)
    rounds: int = 0

    @property
    def channels_removed(self) -> int:
        return sum(change.removed for change in self.layers.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "params_before": self.params_before, "params_after": self.params_after,
            "nonzero_before": self.nonzero_before, "nonzero_after": self.nonzero_after,
            "channels_removed": self.channels_removed,
            "layers": {name: {"kept": c.kept, "removed": c.removed} for name, c in self.layers.items() if c.removed},
            "kept": [{"group": k.group, "channel": k.channel, "reason": k.reason} for k in self.kept],
            "frozen": [{"group": f.group, "layers": list(f.layers), "reason": f.reason} for f in self.frozen],
            "rounds": self.rounds,
        }


def remove_dead(model: nn.Module, example_inputs: ExampleInputs) -> DeadRemoval:
    """A copy of ``model`` without the neurons and filters its zero weights left dead.

    ``example_inputs`` (a batch of a few varied inputs) serve tracing, finding each dead
    channel's constant, and verifying every cut. Masks are carried to the smaller model.
    """
    inputs = as_input_tuple(example_inputs)
    original_channels = _out_channels(model)
    current = copy.deepcopy(model)
    kept: list[KeptDead] = []
    frozen: list[FrozenGroup] = []
    rounds = 0
    while rounds < MAX_ROUNDS and _has_zero_slices(current):
        rounds += 1
        current, removed, kept, round_frozen = _one_round(current, inputs)
        frozen.extend(round_frozen)
        if not removed:
            break
    final_channels = _out_channels(current)
    return DeadRemoval(
        model=current,
        params_before=_params(model), params_after=_params(current),
        nonzero_before=_nonzero(model), nonzero_after=_nonzero(current),
        layers={name: LayerChange(count, final_channels.get(name, count)) for name, count in original_channels.items()},
        kept=kept, frozen=frozen, rounds=rounds,
    )


def _one_round(model: nn.Module, inputs: tuple[torch.Tensor, ...]):
    session = PruningSession(model, inputs, verify=True)
    groups = session.candidates(lambda group: True)
    seen, readers_bn = _reader_inputs(session.model, inputs)
    kept: list[KeptDead] = []
    removed = 0
    for group in groups:
        plan = _dead_channels(session, group, seen, readers_bn, kept)
        if not plan:
            continue
        positions = sorted(plan)
        if len(positions) >= session.graph.size(group):  # a layer keeps one channel
            last = positions.pop()
            kept.append(KeptDead(group.label, last, "every channel of the group is dead; one stays"))
        folds = [fold for position in positions for fold in plan[position]]
        targets = [session.model] + ([session.reference.model] if session.reference is not None else [])
        backups = [_apply_folds(target, folds) for target in targets]
        if session.cut(group, positions):
            removed += len(positions)
        else:
            for target, backup in zip(targets, backups):
                _restore(target, backup)
    result = session.result()
    return result.model, removed, kept, list(session.frozen)


def _dead_channels(session: PruningSession, group: ChannelGroup, seen, readers_bn,
                   kept: list[KeptDead]) -> dict[int, list[tuple[str, str, torch.Tensor]]]:
    """Dead channels of the group (its root numbering), each with the folds its removal
    needs: (module name, "bias" | "running_mean", amount to add)."""
    members = session.graph.members(group)
    if any(_unusual(m.module) for m in members):
        return {}
    producers = [m for m in members if m.is_producer]
    readers = [m for m in members if m.direction == "in" and isinstance(m.module, WEIGHT_LAYERS)]
    size = session.graph.size(group)
    read = _alive(readers, size, _reader_weights)
    fed = _alive(producers, size, _producer_weights)
    plan: dict[int, list] = {}
    for channel in range(size):
        if readers and not read[channel]:
            plan[channel] = []
            continue
        if not producers or fed[channel]:
            continue
        folds, reason = _folds(readers, channel, seen, readers_bn)
        if folds is None:
            kept.append(KeptDead(group.label, channel, reason))
        else:
            plan[channel] = folds
    return plan


def _alive(members: list[Member], size: int, nonzero_slices) -> torch.Tensor:
    """Per root channel: whether any member has a nonzero weight in its slices."""
    count = torch.zeros(size, dtype=torch.long)
    for member in members:
        nonzero = nonzero_slices(member.module)
        count.index_add_(0, torch.tensor(member.root_positions, dtype=torch.long),
                         nonzero[list(member.positions)].long())
    return count > 0


def _folds(readers: list[Member], channel: int, seen, readers_bn):
    """The folds that make removing a constant channel exact, or (None, why not)."""
    folds = []
    for member in readers:
        module, positions = member.module, _positions(member, channel)
        values = seen.get(member.name)
        if values is None:
            return None, f"{member.name} never ran on the example inputs"
        values = values[:, positions]
        if isinstance(module, nn.Linear):
            spread = values.max(dim=0).values - values.min(dim=0).values
            constant = values.mean(dim=0)
        else:
            spread = values.max() - values.min()
            constant = values.mean()
        if float(spread.max()) > CONSTANT_TOLERANCE * max(1.0, float(constant.abs().max())):
            return None, f"its value at {member.name} is not constant"
        if not bool(constant.ne(0).any()):
            continue
        weight = module.weight.detach()[:, positions]
        if isinstance(module, nn.Linear):
            amount = weight @ constant
        else:
            if _pads_with_zeros(module):
                return None, (f"{member.name} pads with zeros, so the constant {float(constant):.4g} this channel "
                              "carries (a batch norm's shift or a bias) cannot fold into it exactly")
            amount = float(constant) * weight.sum(dim=tuple(range(1, weight.dim())))
        if module.bias is not None:
            folds.append((member.name, "bias", amount))
        elif member.name in readers_bn:
            folds.append((readers_bn[member.name], "running_mean", -amount))
        else:
            return None, f"{member.name} has no bias and no batch norm after it to take the constant"
    return folds, None


def _reader_inputs(model: nn.Module, inputs: tuple[torch.Tensor, ...]):
    """What every conv and dense layer reads on ``inputs``, and the batch norm (with
    running statistics) that directly follows each one that has no bias."""
    seen: dict[str, torch.Tensor] = {}
    produced: dict[int, tuple[str, torch.Tensor]] = {}  # the tensor is held so that its id stays its own
    follows: dict[str, str] = {}
    names = {module: name for name, module in model.named_modules()}
    handles = []

    def before(module, args):
        if args and isinstance(args[0], torch.Tensor):
            if isinstance(module, WEIGHT_LAYERS):
                seen.setdefault(names[module], args[0].detach().clone())
            elif id(args[0]) in produced and getattr(module, "running_mean", None) is not None:
                follows.setdefault(produced[id(args[0])][0], names[module])

    def after(module, args, output):
        if isinstance(output, torch.Tensor):
            produced[id(output)] = (names[module], output)

    for module in model.modules():
        if isinstance(module, (*WEIGHT_LAYERS, nn.modules.batchnorm._BatchNorm)):
            handles.append(module.register_forward_pre_hook(before))
        if isinstance(module, WEIGHT_LAYERS):
            handles.append(module.register_forward_hook(after))
    try:
        with eval_mode(model), torch.no_grad():
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return seen, follows


def _apply_folds(model: nn.Module, folds) -> dict[tuple[str, str], torch.Tensor]:
    backup = {}
    with torch.no_grad():
        for name, attribute, amount in folds:
            tensor = getattr(model.get_submodule(name), attribute)
            backup.setdefault((name, attribute), tensor.detach().clone())
            tensor.add_(amount.to(tensor.dtype))
    return backup


def _restore(model: nn.Module, backup: dict[tuple[str, str], torch.Tensor]) -> None:
    with torch.no_grad():
        for (name, attribute), tensor in backup.items():
            getattr(model.get_submodule(name), attribute).copy_(tensor)


def _positions(member: Member, channel: int) -> list[int]:
    return [p for p, root in zip(member.positions, member.root_positions) if root == channel]


def _producer_weights(module: nn.Module) -> torch.Tensor:
    """Per output channel (filter, neuron): whether any of its weights is nonzero."""
    weight = module.weight.detach()
    return weight.ne(0).reshape(weight.shape[0], -1).any(dim=1)


def _reader_weights(module: nn.Module) -> torch.Tensor:
    """Per input channel (or feature): whether any weight reading it is nonzero."""
    weight = module.weight.detach()
    return weight.ne(0).transpose(0, 1).reshape(weight.shape[1], -1).any(dim=1)


def _unusual(module: nn.Module) -> bool:
    """Layers whose weight layout the row/column tests above do not describe."""
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return True
    return isinstance(module, nn.modules.conv._ConvNd) and module.groups != 1


def _pads_with_zeros(module: nn.Module) -> bool:
    padding = module.padding
    if isinstance(padding, str):
        padded = padding == "same" and any(k > 1 for k in module.kernel_size)
    else:
        padded = any(p > 0 for p in padding)
    return padded and module.padding_mode == "zeros"


def _has_zero_slices(model: nn.Module) -> bool:
    """Whether any conv or dense layer has an all-zero filter/neuron or input column:
    without one no channel can be dead, and the dependency graph need not be built."""
    for module in model.modules():
        if isinstance(module, WEIGHT_LAYERS) and not _unusual(module) and (
                not bool(_producer_weights(module).all()) or not bool(_reader_weights(module).all())):
            return True
    return False


def _out_channels(model: nn.Module) -> dict[str, int]:
    return {name: (m.out_channels if isinstance(m, nn.modules.conv._ConvNd) else m.out_features)
            for name, m in model.named_modules() if isinstance(m, WEIGHT_LAYERS)}


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _nonzero(model: nn.Module) -> int:
    return int(sum(int(torch.count_nonzero(p.detach())) for p in model.parameters()))
