"""Inference without launch overhead: CUDA graphs or ``torch.compile(mode="reduce-overhead")``.

``make_runner(model, device, mode)`` returns ``(runner, mode_used, message)``: a callable used
like ``model(clips, **kwargs)`` for inference (under ``torch.no_grad()``). Modes:

* ``eager``: the model itself.
* ``cuda_graphs``: :class:`CudaGraphRunner`, one captured graph per input shape / dtype /
  keyword arguments / autocast state (at most ``max_graphs``; further shapes run eagerly).
  The model must be free of host syncs and data-dependent shapes on CUDA (the DPC selection
  is: fixed ``ceil(N / eps)`` kept tokens, no ``.tolist()``).
* ``compile``: ``torch.compile(model, mode="reduce-overhead")`` (CUDA graphs inside Inductor).

On a device other than CUDA the two fast modes fall back to ``eager`` with a message.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn
from torch.utils._pytree import tree_map

__all__ = ["RUNNER_MODES", "CudaGraphRunner", "make_runner"]

RUNNER_MODES = ("eager", "cuda_graphs", "compile")


def _autocast_state(device_type: str) -> tuple[bool, torch.dtype]:
    return torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)


class CudaGraphRunner:
    """Replay ``model(x, **kwargs)`` from captured CUDA graphs; returns fresh (cloned) outputs.

    The input is copied into a static buffer before each replay. Capture runs ``warmup`` eager
    forwards on a side stream first (this also fills the lazily built caches, e.g. the
    interpolation matrices) and captures with the autocast weight cache off, so that no cached
    cast is freed under a graph. Inference only: everything runs under ``torch.no_grad()``.
    """

    def __init__(self, model: nn.Module, max_graphs: int = 8, warmup: int = 2) -> None:
        self.model, self.max_graphs, self.warmup = model, int(max_graphs), int(warmup)
        self._graphs: dict[tuple, tuple[torch.Tensor, Any, torch.cuda.CUDAGraph]] = {}

    def _key(self, x: torch.Tensor, kwargs: dict) -> tuple:
        return tuple(x.shape), x.dtype, str(x.device), tuple(sorted(kwargs.items())), _autocast_state("cuda")

    def _capture(self, x: torch.Tensor, kwargs: dict):
        enabled, dtype = _autocast_state("cuda")
        static_in = x.detach().clone()
        side = torch.cuda.Stream(device=x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.no_grad(), torch.autocast("cuda", dtype=dtype, enabled=enabled, cache_enabled=False):
            with torch.cuda.stream(side):
                for _ in range(self.warmup):
                    self.model(static_in, **kwargs)
            torch.cuda.current_stream(x.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self.model(static_in, **kwargs)
        return static_in, static_out, graph

    def __call__(self, x: torch.Tensor, **kwargs: Any):
        key = self._key(x, kwargs)
        if key not in self._graphs:
            if len(self._graphs) >= self.max_graphs:
                with torch.no_grad():
                    return self.model(x, **kwargs)
            self._graphs[key] = self._capture(x, kwargs)
        static_in, static_out, graph = self._graphs[key]
        static_in.copy_(x)
        graph.replay()
        return tree_map(lambda t: t.clone() if isinstance(t, torch.Tensor) else t, static_out)


def make_runner(model: nn.Module, device: torch.device | str, mode: str = "eager") -> tuple[Callable, str, str]:
    """``(runner, mode_used, message)`` for ``model`` on ``device`` (see the module doc)."""
    if mode not in RUNNER_MODES:
        raise ValueError(f"runner mode must be one of {RUNNER_MODES}, got {mode!r}")
    device = torch.device(device)
    if mode == "eager":
        return model, "eager", ""
    if device.type != "cuda":
        return model, "eager", f"{mode} needs CUDA; running eagerly on {device.type}"
    if mode == "cuda_graphs":
        return CudaGraphRunner(model), mode, ""
    return torch.compile(model, mode="reduce-overhead"), mode, ""
