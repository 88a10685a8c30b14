"""Caching tensors derived from frozen weights (inference only).

At inference a layer's weights do not change between calls, but some per-call work depends only on
them: the squared kernel sums used by demodulation, or a copy in the memory layout the CPU
convolution wants. Recomputing those every call cost about a third of CPU generation time.
The cache is keyed on the weight object itself (a weak reference) and its version counter, so
in-place updates, `load_state_dict` and swapped-in blended weights all invalidate it; with
gradients enabled, inside torch.compile (where a Python-side cache would break the graph at every
layer) and while a CUDA graph is being recorded (its replays would reuse a stale entry), it is bypassed.
"""

from __future__ import annotations

import contextlib
import contextvars
import weakref
from collections.abc import Callable, Iterator

import torch

_bypass: contextvars.ContextVar[bool] = contextvars.ContextVar("bender_derived_weights_bypass", default=False)


@contextlib.contextmanager
def bypassed() -> Iterator[None]:
    """Derive every weight afresh within: what recording a CUDA graph needs (also detected on its
    own), and what an emulated recording must do to issue the same operations as a real one."""
    token = _bypass.set(True)
    try:
        yield
    finally:
        _bypass.reset(token)


class DerivedWeights:
    def __init__(self) -> None:
        self._store: dict[str, tuple[weakref.ref, int, torch.Tensor]] = {}

    def get(self, name: str, weight: torch.Tensor, make: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        if torch.compiler.is_compiling():
            return make(weight)  # compiled code derives them in-graph (and fuses it); no Python cache
        if _bypass.get() or (weight.is_cuda and torch.cuda.is_current_stream_capturing()):
            return make(weight)  # a CUDA graph must derive them on every replay, not reuse this call's
        if (torch.is_grad_enabled() and weight.requires_grad) or weight.is_inference():
            return make(weight)  # inference tensors have no version counter to validate against
        hit = self._store.get(name)
        if hit is not None and hit[0]() is weight and hit[1] == weight._version:
            return hit[2]
        value = make(weight)
        self._store[name] = (weakref.ref(weight), weight._version, value)
        return value

    def __deepcopy__(self, memo) -> DerivedWeights:  # copies start cold rather than share entries
        return DerivedWeights()

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self._store = {}


def channels_last_weight(weight: torch.Tensor, transposed: bool) -> torch.Tensor:
    """`weight` laid out so a channels_last convolution (or, with `transposed`, the transposed
    convolution that reads `weight.transpose(0, 1)`) uses it without a copy."""
    if transposed:
        return weight.transpose(0, 1).contiguous(memory_format=torch.channels_last).transpose(0, 1)
    return weight.contiguous(memory_format=torch.channels_last)
