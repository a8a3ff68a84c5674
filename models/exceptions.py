"""Errors the models raise and the sweep records."""

from __future__ import annotations


class DivergenceError(ArithmeticError):
    """Training produced a non-finite loss or weight; the model stopped instead of returning NaN."""
