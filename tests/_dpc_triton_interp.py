"""Checks of the Triton DPC kernel under Triton's CPU interpreter (run by test_models_dpc_triton.py).

Must run in a fresh process: ``TRITON_INTERPRET=1`` has to be set before triton is imported.
Prints one json object: case name -> {"ok": bool, "detail": str}.
"""
from __future__ import annotations

import json
import os
import sys

os.environ["TRITON_INTERPRET"] = "1"

import torch  # noqa: E402

from ftp_pose.models import dpc  # noqa: E402
from ftp_pose.models.upsample import upsample_tokens  # noqa: E402


def _both(fn, *args):
    """``fn(*args)`` on the reference path and on the kernel path."""
    out = {}
    for backend in ("reference", "triton"):
        os.environ[dpc.BACKEND_ENV] = backend
        out[backend] = fn(*args)
    os.environ[dpc.BACKEND_ENV] = "auto"
    return out["reference"], out["triton"]


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, rtol=1e-5, atol=1e-5)


def case_plain_random() -> tuple[bool, str]:
    """Random tokens (no near-ties): same log rho, delta and kept indices; odd N (masked tiles)."""
    torch.manual_seed(0)
    x = torch.randn(2, 37, 8)
    ok, msgs = True, []
    for k, normalize in ((5, False), (3, True), (1, False)):
        (lr0, d0), (lr1, d1) = _both(dpc._dpc_log_density_delta, x, k, None, normalize, None)
        same = _close(lr0, lr1) and _close(d0, d1)
        m = dpc.num_kept(37, 4)
        i0, _ = dpc._select(lr0, d0, m)
        i1, _ = dpc._select(lr1, d1, m)
        same = same and torch.equal(i0, i1)
        ok &= same
        msgs.append(f"k={k} normalize={normalize}: {same}")
    return ok, "; ".join(msgs)


def case_plain_duplicates() -> tuple[bool, str]:
    """Exact duplicate tokens: bitwise-equal density, the lower index is denser (tie rule)."""
    torch.manual_seed(1)
    x = torch.randn(1, 24, 6)
    x[0, 17] = x[0, 4]
    x[0, 20] = x[0, 9]
    x[0, 21] = x[0, 9]
    (lr0, d0), (lr1, d1) = _both(dpc._dpc_log_density_delta, x, 3, None, False, None)
    eq = bool(lr1[0, 4] == lr1[0, 17]) and bool(lr1[0, 9] == lr1[0, 20] == lr1[0, 21])
    later_zero = bool(d1[0, 17] < 1e-3) and bool(d1[0, 20] < 1e-3) and bool(d1[0, 21] < 1e-3)
    i0, _ = dpc._select(lr0, d0, 8)
    i1, _ = dpc._select(lr1, d1, 8)
    kept_ok = torch.equal(i0, i1) and 17 not in i1.tolist() and 20 not in i1.tolist()
    return eq and later_zero and kept_ok, f"equal rho {eq}, later copies delta~0 {later_zero}, kept {i1.tolist()} vs {i0.tolist()}"


def case_upsampled(mode: str, k: int, eps: float) -> tuple[bool, str]:
    """HRB: kernel on W G vs the reference (W G W^T): close scores; the kept tokens have the same
    features (copies of a border token are exact duplicates: which copy is kept is decided by the
    tie rule in the kernel, by float rounding in the reference); copies have equal density.
    (Nearest x4 makes 16 copies of every token: with k < 16 every density is exp(0) up to
    rounding, and beyond one token per group of 16 copies the extra copies differ only by
    rounding noise in the reference: hence k = 20 and eps = 16 there.)"""
    torch.manual_seed(2)
    grid, f = (4, 3), 4
    low = torch.randn(2, 12, 8)
    (lr0, d0), (lr1, d1) = _both(dpc._dpc_upsampled_log_density_delta, low, grid, f, mode, k, None, False, None)
    up = upsample_tokens(low - low.mean(1, keepdim=True), grid, f, mode)
    m = dpc.num_kept(up.shape[1], eps)
    i0, _ = dpc._select(lr0, d0, m)
    i1, _ = dpc._select(lr1, d1, m)
    feats = [dpc.gather_tokens(up, i) for i in (i0, i1)]
    key = [torch.sort(fe[..., 0], dim=1).values for fe in feats]
    same_feats = torch.allclose(key[0], key[1], atol=1e-5)
    rho_close = _close(lr0, lr1)
    # copies (equal rows of W) must have bitwise-equal density in the kernel
    wm = upsample_tokens(torch.eye(12).unsqueeze(0), grid, f, mode)[0]  # N x 12
    _, inverse = torch.unique(wm, dim=0, return_inverse=True)
    copies_equal = all(bool((lr1[:, inverse == g] == lr1[:, inverse == g][:, :1]).all()) for g in inverse.unique())
    return same_feats and rho_close and copies_equal, f"features {same_feats}, rho close {rho_close}, copies equal {copies_equal}"


def case_module_dispatch() -> tuple[bool, str]:
    """DPCPruning end to end (both uses) through the kernel vs the reference."""
    torch.manual_seed(3)
    mod = dpc.DPCPruning(eps=3, k=4)
    x = torch.randn(2, 30, 8)
    a, b = _both(lambda: mod(x)[1])
    return torch.equal(a, b), f"kept {torch.equal(a, b)}"


def case_tile_shapes() -> tuple[bool, str]:
    """Tile shape and scan order do not change the result (bitwise): partial tiles, several tiles."""
    from ftp_pose.models.dpc_triton import identity_mix, mixed_gram_dpc

    torch.manual_seed(4)
    x = torch.randn(2, 37, 8)
    x = x - x.mean(1, keepdim=True)
    gram = torch.bmm(x, x.transpose(1, 2))
    outs = [mixed_gram_dpc(gram, *identity_mix(37, x.device), 4, 8.0, 1.0, bm, bn) for bm, bn in ((16, 16), (16, 64), (32, 32))]
    same = all(torch.equal(o[0], outs[0][0]) and torch.equal(o[1], outs[0][1]) for o in outs)
    return same, f"bitwise equal across tile shapes: {same}"


CASES = {
    "plain_random": case_plain_random,
    "plain_duplicates": case_plain_duplicates,
    "upsampled_bilinear": lambda: case_upsampled("bilinear", 5, 6),
    "upsampled_nearest": lambda: case_upsampled("nearest", 20, 16),
    "module_dispatch": case_module_dispatch,
    "tile_shapes": case_tile_shapes,
}

if __name__ == "__main__":
    torch.set_num_threads(1)
    result = {}
    for name in sys.argv[1:] or CASES:
        try:
            ok, detail = CASES[name]()
        except Exception as exc:  # reported, not raised: the test shows it
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        result[name] = {"ok": bool(ok), "detail": detail}
    print(json.dumps(result))
