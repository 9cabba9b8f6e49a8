"""Token masking for VideoMAE pretraining, as the official ``masking_generator.py`` but as torch bool tensors
(True = masked, dropped from the encoder) over the (t, h, w)-flattened grid, reproducible with a ``torch.Generator``.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch

__all__ = ["MaskingGenerator", "TubeMasking", "RandomMasking", "FrameMasking", "MaskSampler", "build_masking"]


def _random_subset(rows: int, n: int, k: int, generator: Optional[torch.Generator]) -> torch.Tensor:
    """Bool ``[rows, n]`` with exactly ``k`` True per row at uniformly random positions."""
    order = torch.rand(rows, n, generator=generator).argsort(dim=1)
    return order < k  # the ranks of a random permutation: exactly k ranks are below k


class MaskingGenerator:
    """Base class: holds the token grid ``(T', H', W')`` and the mask ratio."""

    def __init__(self, input_size: Sequence[int], mask_ratio: float):
        if len(input_size) != 3:
            raise ValueError(f"input_size must be the token grid (T', H', W'), got {tuple(input_size)}")
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        self.input_size: Tuple[int, int, int] = tuple(int(s) for s in input_size)  # type: ignore[assignment]
        self.mask_ratio = float(mask_ratio)
        self.num_patches = math.prod(self.input_size)

    @property
    def num_masks(self) -> int:
        """Number of masked tokens in every mask."""
        raise NotImplementedError

    def _generate(self, rows: int, generator: Optional[torch.Generator]) -> torch.Tensor:
        raise NotImplementedError

    def __call__(
        self,
        batch_size: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
        device: Optional[torch.device] = None,
    ) -> torch.Tensor:
        """A mask ``[N]`` (or ``[batch_size, N]``); random numbers come from ``generator`` (CPU) if given."""
        mask = self._generate(1 if batch_size is None else batch_size, generator)
        mask = mask[0] if batch_size is None else mask
        return mask.to(device) if device is not None else mask

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(input_size={self.input_size}, mask_ratio={self.mask_ratio}, "
            f"masked={self.num_masks}/{self.num_patches})"
        )


class TubeMasking(MaskingGenerator):
    """Tube masking: one random spatial mask of ``round(ratio * H'W')`` cells repeated over all T'."""

    @property
    def num_masks(self) -> int:
        t, h, w = self.input_size
        return t * round(self.mask_ratio * h * w)

    def _generate(self, rows: int, generator: Optional[torch.Generator]) -> torch.Tensor:
        t, h, w = self.input_size
        spatial = _random_subset(rows, h * w, round(self.mask_ratio * h * w), generator)
        return spatial[:, None, :].expand(rows, t, h * w).reshape(rows, -1)


class RandomMasking(MaskingGenerator):
    """Independent random masking of ``round(ratio * N)`` tokens anywhere in space-time."""

    @property
    def num_masks(self) -> int:
        return round(self.mask_ratio * self.num_patches)

    def _generate(self, rows: int, generator: Optional[torch.Generator]) -> torch.Tensor:
        return _random_subset(rows, self.num_patches, self.num_masks, generator)


class FrameMasking(MaskingGenerator):
    """Frame masking: ``round(ratio * T')`` whole temporal slices masked."""

    @property
    def num_masks(self) -> int:
        t, h, w = self.input_size
        return round(self.mask_ratio * t) * h * w

    def _generate(self, rows: int, generator: Optional[torch.Generator]) -> torch.Tensor:
        t, h, w = self.input_size
        frames = _random_subset(rows, t, round(self.mask_ratio * t), generator)
        return frames[:, :, None].expand(rows, t, h * w).reshape(rows, -1)


_KINDS = {"tube": TubeMasking, "random": RandomMasking, "frame": FrameMasking}


def build_masking(kind: str, input_size: Sequence[int], mask_ratio: float) -> MaskingGenerator:
    """Build a masking generator by name: ``"tube"``, ``"random"`` or ``"frame"``."""
    if kind not in _KINDS:
        raise ValueError(f"unknown mask type {kind!r}; choose from {sorted(_KINDS)}")
    return _KINDS[kind](input_size, mask_ratio)


class MaskSampler:
    """Masks of one kind and ratio for whatever token grid a batch has (the grid follows the clip size); drawn
    from the global torch RNG unless :meth:`seed` gives it a generator.

    Args:
        grid: a token grid to validate the settings with at construction rather than at the first batch.
    """

    def __init__(self, kind: str, mask_ratio: float, grid: Optional[Sequence[int]] = None) -> None:
        if grid is not None:
            build_masking(kind, grid, mask_ratio)
        self.kind = kind
        self.mask_ratio = mask_ratio
        self.generator: Optional[torch.Generator] = None

    def seed(self, seed: int) -> None:
        """Draw the masks from a CPU generator seeded with ``seed`` from now on."""
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(
        self,
        batch_size: int,
        grid: Sequence[int],
        device: Optional[torch.device] = None,
        generator: Optional[torch.Generator] = None,
    ) -> torch.Tensor:
        """Per-sample masks ``[batch_size, N]`` (True = masked) over the token ``grid``; ``generator``
        overrides :attr:`generator` for this call."""
        gen = self.generator if generator is None else generator
        return build_masking(self.kind, grid, self.mask_ratio)(batch_size, generator=gen, device=device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, mask_ratio={self.mask_ratio})"
