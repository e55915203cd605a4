"""The key of a piece from its pitch classes: the Krumhansl-Kessler profile that correlates best.

``key_of(chroma)`` gives ``(tonic pitch class, 0 major | 1 minor)`` for a (12,) vector of
pitch-class weights (durations, counts); the chord reader uses it for its key prior.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# Krumhansl-Kessler key profiles (major, minor), tonic first
_PROFILES = ((6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
             (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17))


@lru_cache(maxsize=1)
def _key_profiles() -> np.ndarray:
    """The 24 key profiles, centred and of unit norm: (2 modes x 12 tonics, 12), read-only."""
    rotated = np.array([np.roll(profile, tonic) for profile in _PROFILES for tonic in range(12)], np.float64)
    rotated -= rotated.mean(axis=1, keepdims=True)
    rotated /= np.linalg.norm(rotated, axis=1, keepdims=True)
    rotated.setflags(write=False)
    return rotated


def key_of(chroma: np.ndarray) -> tuple[int, int]:
    """``(tonic pitch class, 0 major | 1 minor)`` whose Krumhansl-Kessler profile best correlates with ``chroma`` (12,)."""
    best = int(np.argmax(_key_profiles() @ (chroma - chroma.mean())))
    return best % 12, best // 12
