"""Philox4x32-10 in NumPy: the reference's copy of csrc/include/fastsample/philox.h."""
from __future__ import annotations

import numpy as np

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)


def philox4x32_10(counter: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Philox4x32-10 over arrays: counter uint64[N, 4] and key uint64[N, 2] (32-bit values each).

    Returns uint64[N, 4] holding the four 32-bit output words.
    """
    c = [counter[:, i].astype(np.uint64) & _MASK32 for i in range(4)]
    k0 = key[:, 0].astype(np.uint64) & _MASK32
    k1 = key[:, 1].astype(np.uint64) & _MASK32
    for _ in range(10):
        p0 = _M0 * c[0]
        p1 = _M1 * c[2]
        hi0, lo0 = p0 >> _SHIFT32, p0 & _MASK32
        hi1, lo1 = p1 >> _SHIFT32, p1 & _MASK32
        c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return np.stack(c, axis=1)


def _row_blocks(seed: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Each row's Philox block for one step (key = seed, counter = (offset, 0)): uint64[N, 4]."""
    seed = np.asarray(seed, dtype=np.uint64).reshape(-1)
    offset = np.asarray(offset, dtype=np.uint64).reshape(-1)
    counter = np.stack(
        [offset & _MASK32, offset >> _SHIFT32, np.zeros_like(offset), np.zeros_like(offset)], axis=1
    )
    key = np.stack([seed & _MASK32, seed >> _SHIFT32], axis=1)
    return philox4x32_10(counter, key)


def row_random_u64(seed: np.ndarray, offset: np.ndarray) -> list[int]:
    """The 64 random bits each row draws with (the block's words 0 and 1), as Python ints."""
    out = _row_blocks(seed, offset)
    return [(int(a) << 32) | int(b) for a, b in zip(out[:, 0], out[:, 1])]


def row_coin(seed: np.ndarray, offset: np.ndarray) -> list[float]:
    """XTC's coin of each row, uniform in [0, 1): the top 53 bits of words 2 and 3."""
    out = _row_blocks(seed, offset)
    return [float(((int(a) << 32) | int(b)) >> 11) * 2.0**-53 for a, b in zip(out[:, 2], out[:, 3])]


def row_accept_coin(seed: int, offset: int, k: int) -> float:
    """Speculative verification's coin for a node's k-th child, uniform in [0, 1): the top 53
    bits of words 0 and 1 of the block with counter (offset, 1, k)."""
    counter = np.array([[offset & 0xFFFFFFFF, offset >> 32, 1, k]], dtype=np.uint64)
    key = np.array([[seed & 0xFFFFFFFF, seed >> 32]], dtype=np.uint64)
    out = philox4x32_10(counter, key)
    return float(((int(out[0, 0]) << 32) | int(out[0, 1])) >> 11) * 2.0**-53
