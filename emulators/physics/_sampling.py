"""Direct sampling of rare events: successes among many Bernoulli trials.

The positions of successes among ``n`` independent trials of probability ``p`` are the
partial sums of geometric gaps, so the cost is proportional to the number of successes,
not to the number of trials.
"""

from __future__ import annotations

import math

import numpy as np

from . import _validate as v
from ._types import FloatArray, IntArray
from .errors import ParameterError


def success_indices(rng: np.random.Generator, n_trials: int, p: float) -> IntArray:
    """Sorted 0-based indices of the successes among ``n_trials`` Bernoulli(``p``) trials.

    Gaps between successes are i.i.d. geometric(p) on {1, 2, ...}; cost O(successes).
    """
    rng = v.generator(rng)
    n = v.count("n_trials", n_trials)
    p = v.probability("p", p)
    if n == 0 or p == 0.0:
        return np.empty(0, dtype=np.int64)
    if p == 1.0:
        return np.arange(n, dtype=np.int64)
    chunks: list[IntArray] = []
    last = -1  # index of the last success drawn so far
    while True:
        remaining = (n - 1 - last) * p
        size = int(remaining + 6.0 * math.sqrt(remaining) + 16)
        gaps = rng.geometric(p, size=size).astype(np.int64)
        idx = last + np.cumsum(gaps)
        if idx[-1] >= n:
            chunks.append(idx[: int(np.searchsorted(idx, n))])
            break
        chunks.append(idx)
        last = int(idx[-1])
    return np.concatenate(chunks) if len(chunks) > 1 else chunks[0]


def attempts_until_success(rng: np.random.Generator, p: float, size: int | None = None) -> IntArray:
    """Number of attempts up to and including the first success: geometric(p) on {1, 2, ...}."""
    rng = v.generator(rng)
    p = v.probability("p", p)
    if p == 0.0:
        raise ParameterError("p must be > 0: with p = 0 no attempt ever succeeds")
    n = 1 if size is None else v.count("size", size)
    return rng.geometric(p, size=n).astype(np.int64)


def sample_categorical(rng: np.random.Generator, probabilities: FloatArray, size: int) -> IntArray:
    """``size`` i.i.d. draws of an index ``k`` with probability ``probabilities[k]``."""
    rng = v.generator(rng)
    p = v.probability_array("probabilities", probabilities)
    cdf = np.cumsum(p)
    if cdf.size == 0 or not np.isclose(cdf[-1], 1.0, atol=1e-9):
        raise ParameterError("probabilities must sum to 1")
    k = np.searchsorted(cdf, rng.random(v.count("size", size)) * cdf[-1], side="right")
    out: IntArray = np.minimum(k, p.size - 1).astype(np.int64)
    return out
