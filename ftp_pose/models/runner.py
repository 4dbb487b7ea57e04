"""Inference without launch overhead: CUDA graphs or ``torch.compile(mode="reduce-overhead")``.

``make_runner(model, device, mode)`` returns ``(runner, mode_used, message)``: a callable used
like ``model(clips, **kwargs)`` for inference (under ``torch.no_grad()``). Modes:

* ``eager``: the model itself.
* ``cuda_graphs``: :class:`CudaGraphRunner`, one captured graph per :meth:`CudaGraphRunner.key`
  (at most ``max_graphs``; further keys run eagerly). The model must be free of host syncs and
  data-dependent shapes on CUDA (the DPC selection is: fixed ``ceil(N / eps)`` kept tokens, no
  ``.tolist()``).
* ``compile``: ``torch.compile(model, mode="reduce-overhead")`` (CUDA graphs inside Inductor).

On a device other than CUDA the two fast modes fall back to ``eager`` with a message
(:class:`CudaGraphRunner` itself also runs CPU inputs eagerly).
"""
from __future__ import annotations

import os
from typing import Any, Callable

import torch
import torch.nn as nn
from torch.utils._pytree import tree_map

__all__ = ["RUNNER_MODES", "CudaGraphRunner", "batch_bucket", "make_runner"]

RUNNER_MODES = ("eager", "cuda_graphs", "compile")


def _autocast_state(device_type: str) -> tuple[bool, torch.dtype]:
    return torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)


def batch_bucket(n: int, buckets: tuple[int, ...] | None = None) -> int:
    """The batch size a batch of ``n`` is padded to: the smallest bucket ``>= n``.

    ``buckets=None`` means powers of two (1, 2, 4, 8 ...); a batch larger than every given
    bucket keeps its own size.
    """
    if n < 1:
        raise ValueError(f"batch size must be >= 1, got {n}")
    if buckets is None:
        return 1 << (n - 1).bit_length()
    return min((b for b in buckets if b >= n), default=n)


class CudaGraphRunner:
    """Replay ``model(x, **kwargs)`` from captured CUDA graphs; returns fresh (cloned) outputs.

    * **Key** (:meth:`key`): padded input shape, dtype, device, keyword arguments, autocast
      state, train / eval mode, the DPC backend (``$FTP_POSE_DPC``) and the settings of every
      pruning module (``eps, k, tau, normalize, chunk_size, selection, seed``): after ``model.set_pruning(...)``
      the next call captures a new graph instead of replaying the old ratio.
    * **Batch buckets**: a batch of ``n`` (``x`` is ``B x ...``) runs in the graph of
      :func:`batch_bucket` ``(n, buckets)`` (powers of two by default): ``x`` is copied into the
      first ``n`` rows of the static input, the other rows keep earlier inputs (the model must
      treat batch elements independently, as inference does), and every output whose first
      dimension is the bucket is sliced back to ``n`` (outputs must be batch-first).
    * **Memory**: all graphs share one memory pool (outputs are cloned right after each replay,
      so one graph may reuse another's memory).

    Capture runs ``warmup`` eager forwards on a side stream first (this also fills lazily built
    caches, e.g. the interpolation matrices) and captures with the autocast weight cache off, so
    that no cached cast is freed under a graph. Inference only: everything runs under
    ``torch.no_grad()``. Inputs not on CUDA run eagerly.
    """

    #: device types whose inputs run from graphs (others run eagerly); a test may fake a capture on the CPU
    graph_devices: tuple[str, ...] = ("cuda",)

    def __init__(self, model: nn.Module, max_graphs: int = 16, warmup: int = 2,
                 buckets: tuple[int, ...] | None = None) -> None:
        self.model, self.max_graphs, self.warmup = model, int(max_graphs), int(warmup)
        self.buckets = None if buckets is None else tuple(sorted(int(b) for b in buckets))
        self.captures = 0  # graphs captured so far (for tests and reports)
        self._graphs: dict[tuple, tuple[torch.Tensor, Any, Any]] = {}
        self._pool = None
        from ftp_pose.models.dpc import DPCPruning

        self._prunes = [m for m in model.modules() if isinstance(m, DPCPruning)]

    def key(self, x: torch.Tensor, kwargs: dict) -> tuple:
        """What a captured graph depends on, for an input ``x`` of ``B x ...`` (see the class doc)."""
        from ftp_pose.models.dpc import BACKEND_ENV

        shape = (batch_bucket(x.shape[0], self.buckets), *x.shape[1:])
        pruning = tuple((float(m.eps), int(m.k), m.tau, bool(m.normalize), m.chunk_size, m.selection, m.seed) for m in self._prunes)
        return (shape, x.dtype, str(x.device), tuple(sorted(kwargs.items())), _autocast_state(x.device.type),
                bool(self.model.training), os.environ.get(BACKEND_ENV, "auto").strip().lower(), pruning)

    def _capture(self, static_in: torch.Tensor, kwargs: dict) -> tuple[Any, Any]:
        """``(static_out, graph)``: ``model(static_in, **kwargs)`` captured into a CUDA graph."""
        enabled, dtype = _autocast_state("cuda")
        dev = static_in.device
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        side = torch.cuda.Stream(device=dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with torch.no_grad(), torch.autocast("cuda", dtype=dtype, enabled=enabled, cache_enabled=False):
            with torch.cuda.stream(side):
                for _ in range(self.warmup):
                    self.model(static_in, **kwargs)
            torch.cuda.current_stream(dev).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool):
                static_out = self.model(static_in, **kwargs)
        return static_out, graph

    def _replay(self, graph: Any) -> None:
        graph.replay()

    def __call__(self, x: torch.Tensor, **kwargs: Any):
        if x.device.type not in self.graph_devices:
            with torch.no_grad():
                return self.model(x, **kwargs)
        key = self.key(x, kwargs)
        n, size = x.shape[0], key[0][0]
        if key not in self._graphs:
            if len(self._graphs) >= self.max_graphs:
                with torch.no_grad():
                    return self.model(x, **kwargs)
            static_in = torch.empty(key[0], dtype=x.dtype, device=x.device)
            static_in[:n].copy_(x)
            if size > n:  # padding rows: copies of the first sample (any valid input will do)
                static_in[n:].copy_(x[:1].expand(size - n, *x.shape[1:]))
            static_out, graph = self._capture(static_in, kwargs)
            self._graphs[key] = (static_in, static_out, graph)
            self.captures += 1
        static_in, static_out, graph = self._graphs[key]
        static_in[:n].copy_(x)
        self._replay(graph)

        def fresh(t):
            if not isinstance(t, torch.Tensor):
                return t
            return (t[:n] if size > n and t.dim() > 0 and t.shape[0] == size else t).clone()

        return tree_map(fresh, static_out)


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
