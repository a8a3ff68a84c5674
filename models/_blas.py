"""Element-wise updates done by BLAS, in place and in one pass.

On the arrays of a small network NumPy's way (a temporary, a broadcast loop row by row)
costs about twice what the BLAS call does; these are the updates every batch makes.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.linalg import blas

_AXPY = {np.dtype(np.float64): blas.daxpy, np.dtype(np.float32): blas.saxpy}
_GER = {np.dtype(np.float64): blas.dger, np.dtype(np.float32): blas.sger}


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


GER_FROM = 8192  # elements: below this (an output layer of a few classes) NumPy's add wins


def add_to_rows(z: np.ndarray, b: np.ndarray) -> None:
    """z += b on every row of the 2-D z, in place (BLAS rank-1 update b x ones on z's
    transpose): half the time of NumPy's broadcast add on a batch of hidden units."""
    ours = z.flags.c_contiguous and z.dtype in _GER and b.dtype == z.dtype
    if not ours or z.size < GER_FROM:
        z += b
        return
    target = z.T  # Fortran-ordered: what ger updates in place
    out = _GER[z.dtype](1.0, b, ones(z.shape[0], z.dtype), a=target, overwrite_a=True)
    if not np.shares_memory(out, z):  # f2py worked on a copy after all: keep its result
        target[...] = out


CACHED_ONES = 65536  # longest vector of ones kept: predictions on big inputs need not pin one


def ones(n: int, dtype: np.dtype) -> np.ndarray:
    """A read-only vector of n ones (sums over rows or columns as BLAS products), shared
    between calls up to `CACHED_ONES` long."""
    return _shared_ones(n, np.dtype(dtype)) if n <= CACHED_ONES else np.ones(n, dtype)


@functools.lru_cache(maxsize=16)
def _shared_ones(n: int, dtype: np.dtype) -> np.ndarray:
    vector = np.ones(n, dtype)
    vector.flags.writeable = False
    return vector
