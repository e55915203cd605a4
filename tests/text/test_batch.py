"""The batch encoder (``text.batch``, what ``prepare`` runs) gives what the readable per-window
encoder gives, window for window, over many scores at once."""

from __future__ import annotations

import numpy as np
import pytest
from synth import make_score, random_score

from mmmgen.config import CodecConfig
from mmmgen.data.prepare import transpose_window
from mmmgen.text.batch import scores_to_parts
from mmmgen.text.encode import _sort_order, score_to_windows, window_to_parts


def reference(score, config: CodecConfig, shifts: tuple[int, ...]) -> list[dict]:
    out = []
    for window in score_to_windows(score, config):
        for shift in shifts:
            w = transpose_window(window, shift) if shift else window
            if w.n_notes >= max(config.min_notes, 1):
                parts = window_to_parts(w, config.grid)
                out.append({"start_bar": w.start_bar, "ts": list(w.time_signature), "transpose": shift, "parts": parts})
    return out


def corpus() -> list:
    meters = [(4, 4), (3, 4), (6, 8), (5, 4), (12, 8), (2, 2), (7, 8)]
    scores = [random_score(seed, n_bars=5 + seed % 11, meter=meters[seed % 7], tpq=[480, 384, 96, 120][seed % 4]) for seed in range(14)]
    long_notes = [(60, 0, 30), (64, 2.5, 9.5), (67, 31.75, 0.1), (127, 4, 1), (0, 5, 1)]
    scores.append(make_score([(0, False, long_notes), (0, True, [(36, 1, 0.1), (38, 17, 0.1)])],  # held across windows
                             meters=[(0, 4, 4), (6, 3, 4), (15, 7, 32), (15.875, 4, 4)]))  # a mid-bar change, a meter the text cannot spell  # fmt: skip
    scores.append(make_score([(5, False, [(60, 0, 1)]), (6, False, [])]))  # one note, an empty track
    return scores


@pytest.mark.parametrize(
    ("config", "transpose"),
    [(CodecConfig(), 0), (CodecConfig(bars=4, hop=3), 2), (CodecConfig(grid=24, hop=1, bars=2), 1), (CodecConfig(grid=4, min_notes=20), 1)],
)
def test_batch_gives_the_reference_parts(config, transpose):
    scores = corpus()
    shifts = [tuple(range(-transpose, transpose + 1)) if i % 3 else (0,) for i in range(len(scores))]  # test files: (0,)
    got = scores_to_parts(scores, config, shifts)
    expected = [reference(score, config, s) for score, s in zip(scores, shifts, strict=True)]
    assert sum(len(w) for w in expected) > len(scores)
    assert got == expected
    assert scores_to_parts(scores[3:4], config, shifts[3:4]) == expected[3:4]  # alone as in a batch


def test_sort_keys_too_long_for_int64_split_the_groups(monkeypatch):
    """Keys past int64 (huge windows at a fine grid, in their millions) are sorted in parts: same text."""
    from mmmgen.text import batch

    scores = corpus()
    expected = scores_to_parts(scores, CodecConfig(), [(0,)] * len(scores))
    monkeypatch.setattr(batch, "_KEY_LIMIT", 10**6)
    assert scores_to_parts(scores, CodecConfig(), [(0,)] * len(scores)) == expected


def test_sort_order_is_lexsort_packed_or_not():
    rng = np.random.default_rng(0)
    keys = [rng.integers(0, 50, 500), rng.integers(-3, 3, 500), rng.integers(0, 2**40, 500)]
    for chosen in (keys[:2], keys):  # small enough to pack; too large: lexsort itself
        assert (_sort_order(*chosen) == np.lexsort(chosen[::-1])).all()
