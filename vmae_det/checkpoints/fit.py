"""Whether a state dict fits a model: the one comparison of keys and shapes, and its one message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Mapping

from torch import nn

from .files import CheckpointError, some_names

__all__ = ["StateMismatch", "check_state_fits", "compare_state"]


@dataclass
class StateMismatch:
    """How a state dict differs from a model's: ``str()`` is the message part naming the keys."""

    missing: List[str] = field(default_factory=list)  # model tensors the state dict lacks
    unexpected: List[str] = field(default_factory=list)  # state-dict tensors with no place in the model
    shapes: List[str] = field(default_factory=list)  # "key: checkpoint (a, b) vs model (c, d)"

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.shapes)

    def __str__(self) -> str:
        parts = []
        if self.missing:
            parts.append(
                f"{len(self.missing)} model tensor(s) missing from the checkpoint (they would keep their random "
                f"initialisation): {some_names(self.missing, 8)}"
            )
        if self.unexpected:
            parts.append(
                f"{len(self.unexpected)} checkpoint tensor(s) with no place in the model: "
                f"{some_names(self.unexpected, 8)}"
            )
        if self.shapes:
            parts.append(f"{len(self.shapes)} shape mismatch(es): {some_names(self.shapes, 5)}")
        return "; ".join(parts)

    def message(self, where: str, model: nn.Module, why: str) -> str:
        """``<where> does not fit this <Model> (<why>): <the keys>``."""
        return f"{where} does not fit this {type(model).__name__} ({why}): {self}"


def compare_state(own: Mapping, state: Mapping) -> StateMismatch:
    """Keys of ``own`` (a model's state dict) missing from ``state``, keys in excess, and differing shapes."""
    shapes = []
    for k in sorted(own):
        if k in state and tuple(getattr(state[k], "shape", ())) != tuple(own[k].shape):
            shapes.append(f"{k}: checkpoint {tuple(getattr(state[k], 'shape', ()))} vs model {tuple(own[k].shape)}")
    return StateMismatch(
        missing=sorted(k for k in own if k not in state),
        unexpected=sorted(k for k in state if k not in own),
        shapes=shapes,
    )


def check_state_fits(
    model: nn.Module,
    state: Mapping,
    where: str,
    why: str = "another config, class count or architecture?",
    advice: str = "",
) -> None:
    """Raise :class:`CheckpointError` unless ``state`` has exactly ``model``'s keys and shapes."""
    found = compare_state(model.state_dict(), state)
    if found:
        raise CheckpointError(found.message(where, model, why) + (f". {advice}" if advice else ""))
