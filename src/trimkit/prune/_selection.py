"""Which channels of a group to remove, given its scores: by threshold (Combine), by
ratio, or by one global ranking; then the keep-one and round-to rules."""

from __future__ import annotations

import math

import torch

from trimkit.prune._graph import Layout


def below_threshold(scores: torch.Tensor, threshold: float) -> list[int]:
    """Combine: every channel whose score is below the threshold."""
    return torch.nonzero(scores < threshold).flatten().tolist()


def lowest_fraction(scores: torch.Tensor, ratio: float) -> list[int]:
    """The floor(ratio * n) lowest-scored channels (ties broken by position)."""
    count = int(math.floor(ratio * scores.numel() + 1e-9))
    return sorted(torch.sort(scores, stable=True).indices[:count].tolist())


def global_lowest(group_scores: list[torch.Tensor], ratio: float) -> list[list[int]]:
    """One ranking over all groups' channels: the floor(ratio * total) lowest go."""
    flat = torch.cat(group_scores) if group_scores else torch.zeros(0)
    count = int(math.floor(ratio * flat.numel() + 1e-9))
    chosen = set(torch.sort(flat, stable=True).indices[:count].tolist())
    removals, offset = [], 0
    for scores in group_scores:
        removals.append([p for p in range(scores.numel()) if p + offset in chosen])
        offset += scores.numel()
    return removals


def global_cutoff(group_scores: list[torch.Tensor], ratio: float) -> float:
    """The score below which the global ranking removes channels (for progressive mode)."""
    flat = torch.cat(group_scores)
    count = int(math.floor(ratio * flat.numel() + 1e-9))
    if count == 0:
        return -math.inf
    ordered = torch.sort(flat).values
    return float(ordered[count]) if count < flat.numel() else math.inf


_PLAIN = Layout()


def enforce_keep_rules(scores: torch.Tensor, removal: list[int], round_to: int | None, layout: Layout = _PLAIN
                       ) -> list[int]:
    """Keep at least one channel (the best), and a multiple of ``round_to`` channels
    where the group has that many, by sparing the best-scored of the removed ones.
    With ``layout.blocks`` > 1 the removal is made uniform across blocks first; with a
    ``layout.granule`` > 1 it takes whole granules."""
    blocks = layout.blocks
    if layout.granule > 1:
        return whole_granules(scores, removal, layout.granule)
    if blocks > 1:
        width = scores.numel() // blocks
        removal = uniform_across_blocks(scores, removal, blocks)
        if len(removal) == scores.numel():
            removal = uniform_across_blocks(scores, removal[: (width - 1) * blocks], blocks)
        return removal
    size = scores.numel()
    kept = size - len(removal)
    target = max(kept, 1)
    if round_to and round_to > 1:
        target = min(size, math.ceil(target / round_to) * round_to)
    if target == kept:
        return sorted(removal)
    spare = sorted(removal, key=lambda p: (-float(scores[p]), p))[: target - kept]
    return sorted(set(removal) - set(spare))


def whole_granules(scores: torch.Tensor, removal: list[int], granule: int) -> list[int]:
    """Turn a removal into whole aligned granules of ``granule`` consecutive channels (a
    group norm's groups): as many granules as the removal has channels' worth, lowest mean
    score first, at least one granule kept."""
    count = scores.numel() // granule
    taken = min(round(len(removal) / granule), count - 1)
    if taken <= 0:
        return []
    mean_by_granule = scores[: count * granule].view(count, granule).mean(dim=1)
    chosen = torch.sort(mean_by_granule, stable=True).indices[:taken].tolist()
    return sorted(g * granule + offset for g in chosen for offset in range(granule))


def uniform_across_blocks(scores: torch.Tensor, removal: list[int], blocks: int) -> list[int]:
    """Turn a removal into one that takes the same offsets from each of ``blocks``
    equal blocks (what a grouped convolution can lose): as many offsets as the removal
    has channels per block, lowest mean score first."""
    if blocks <= 1 or not removal:
        return removal
    width = scores.numel() // blocks
    offsets = round(len(removal) / blocks)
    mean_by_offset = scores.view(blocks, width).mean(dim=0)
    chosen = sorted(torch.sort(mean_by_offset, stable=True).indices[:offsets].tolist())
    return sorted(block * width + offset for block in range(blocks) for offset in chosen)
