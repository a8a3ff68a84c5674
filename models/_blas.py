"""BLAS for what a training step does: scaled additions in place and in one pass, and
matrix products in the pieces BLAS runs fastest."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from scipy.linalg import blas

_AXPY = {np.dtype(np.float64): blas.daxpy, np.dtype(np.float32): blas.saxpy}


def add_scaled(y: np.ndarray, x: np.ndarray, a: float) -> None:
    """y += a * x in place, in one pass (BLAS axpy).

    NumPy needs two passes and a temporary for this; on weights that do not fit in cache
    the second pass costs as much as the first.
    """
    if not (y.flags.c_contiguous and y.dtype in _AXPY):  # not ours: NumPy's way
        y += a * x
        return
    flat = y.reshape(-1)  # a view, y being contiguous
    out = _AXPY[y.dtype](x.reshape(-1), flat, a=a)
    if out is not flat:  # f2py worked on a copy after all: keep its result
        flat[...] = out


def ones(n: int, dtype: Any) -> np.ndarray:
    """A read-only vector of n ones, shared between calls: the softmax's row sums over a
    few classes as a BLAS product."""
    return _shared_ones(n, np.dtype(dtype))  # one entry per dtype, however it is spelled


@functools.lru_cache(maxsize=16)
def _shared_ones(n: int, dtype: np.dtype) -> np.ndarray:
    vector = np.ones(n, dtype)
    vector.flags.writeable = False
    return vector


# OpenBLAS's AVX-512 builds run a product of at most a million multiply-adds on kernels for
# small matrices, much faster at the shapes of a small network's batch than its general
# path. At float64, (rows x 64) @ (64 x 100) took 26.3 us with 156 rows, 40.7 us with 157;
# with 200 rows, 49.9 us in one call and 38.1 us as two products of 100 rows (24.5 and
# 20.6 us at float32). So such a product is done in pieces.
SMALL_PRODUCT = 1_000_000
# Rows a small product must hold for a split to pay: with wider rows the pieces are thin and
# lose more to the extra calls than the kernels gain ((256 x 64) @ (64 x 256) at float64:
# 136 us in one call, 174 us in pieces of at most 61 rows).
MIN_ROWS = 100
SMALL_KERNEL_TARGETS = {"SkylakeX", "Cooperlake", "SapphireRapids"}  # OpenBLAS's names


@functools.cache
def _small_kernels() -> bool:
    """Whether NumPy's BLAS is an OpenBLAS running on a target with small-matrix kernels."""
    from threadpoolctl import threadpool_info

    try:
        name = str(np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"])
    except (KeyError, TypeError, ValueError):  # a NumPy that does not say: assume none
        return False
    return "openblas" in name.lower() and any(
        lib.get("internal_api") == "openblas" and lib.get("architecture") in SMALL_KERNEL_TARGETS
        for lib in threadpool_info()
    )


def pieces(rows: int, width: int) -> int:
    """In how many pieces to split ``rows`` rows of a product whose other two dimensions
    multiply to ``width``: more than one only where the whole is not a small product but
    one of `MIN_ROWS` rows is, and the pieces are then small products."""
    product = rows * width
    if product <= SMALL_PRODUCT or width * MIN_ROWS > SMALL_PRODUCT or not _small_kernels():
        return 1
    return math.ceil(product / SMALL_PRODUCT)


def matmul_rows(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = a @ b, in blocks of a's rows where BLAS runs those faster (see `pieces`)."""
    m = a.shape[0]
    n = pieces(m, a.shape[1] * b.shape[1])
    if n == 1:
        return np.matmul(a, b, out=out)
    step = math.ceil(m / n)
    for start in range(0, m, step):
        np.matmul(a[start : start + step], b, out=out[start : start + step])
    return out


def matmul_summed(a: np.ndarray, b: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """out = a.T @ b (a weight gradient: a sum over the batch's rows), in blocks of rows
    where BLAS runs those faster (see `pieces`); ``scratch`` is shaped like ``out``."""
    m = a.shape[0]
    n = pieces(m, a.shape[1] * b.shape[1])
    if n == 1:
        return np.matmul(a.T, b, out=out)
    step = math.ceil(m / n)
    np.matmul(a[:step].T, b[:step], out=out)
    for start in range(step, m, step):
        out += np.matmul(a[start : start + step].T, b[start : start + step], out=scratch)
    return out
