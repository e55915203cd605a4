"""Drum-kit subsets (``prepare --kit-subsets``): dropping pitches from a part's text is encoding
the kept notes, and prepare adds such copies to the training split only."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mmmgen.data.write import spool_rows
from mmmgen.text import vocab as V
from mmmgen.text.encode import TrackNotes, track_to_bar_texts
from mmmgen.text.kit import keep_pitches, kit_subset, part_pitches

GRID, BARS, BAR = 12, 4, 48

notes_st = st.lists(
    st.tuples(st.integers(35, 45), st.integers(0, BARS * BAR - 1), st.integers(1, 2 * BAR)),
    min_size=1, max_size=40,
)


def track(notes, is_drum=True) -> TrackNotes:
    rows = sorted({(p, s, s + d, 64) for p, s, d in notes}, key=lambda n: (n[1], n[0]))
    return TrackNotes(0, is_drum, np.array(rows, dtype=np.int64).reshape(-1, 4))


@settings(max_examples=200, deadline=None)
@given(notes_st, st.sets(st.integers(35, 45)))
def test_keeping_pitches_is_encoding_the_kept_notes(notes, keep):
    whole = track(notes)
    bars = " ".join(track_to_bar_texts(whole, BARS, BAR, GRID))
    kept_notes = [n for n in notes if n[0] in keep]
    text, n = keep_pitches(bars, keep, GRID)
    if kept_notes:
        expected = track(kept_notes)
        assert text == " ".join(track_to_bar_texts(expected, BARS, BAR, GRID))
        assert n == sum(0 <= s < BARS * BAR for _, s, _, _ in expected.notes.tolist())
    else:
        assert text == " ".join([V.BAR_START, V.BAR_END] * BARS) and n == 0
    assert part_pitches(text) <= keep


def parts_of(*tracks):
    return [(t.word, len(t.notes), " ".join(track_to_bar_texts(t, BARS, BAR, GRID))) for t in tracks]


def test_kit_subset_narrows_every_drum_part_of_three_pitches_and_nothing_else():
    kit = track([(36, 0, 1), (38, 12, 1), (42, 24, 1), (46, 60, 1), (49, 150, 1)])
    two = track([(53, 0, 1), (54, 30, 1)])
    bass = track([(40, 0, 24), (43, 48, 24), (45, 96, 24)], is_drum=False)
    parts = parts_of(kit, two, bass)
    for seed in range(50):
        smaller = kit_subset(parts, random.Random(seed), GRID)
        pitches = part_pitches(smaller[0][2])
        assert pitches and pitches < part_pitches(parts[0][2])
        assert smaller[0][1] == sum(p in pitches for p, *_ in kit.notes.tolist())
        assert smaller[1:] == parts[1:]  # 2 pitches: left as it is; pitched parts never touched
    assert kit_subset(parts_of(two, bass), random.Random(0), GRID) is None


def test_spool_rows_add_kit_copies_at_the_asked_share():
    kit = track([(36, 0, 1), (38, 12, 1), (42, 24, 1), (46, 60, 1)])
    bass = track([(40, 0, 24)], is_drum=False)
    records = [(f"s{i}.mid", 0, (4, 4), 0, parts_of(kit, bass)) for i in range(200)]
    records.append(("bass.mid", 0, (4, 4), 0, parts_of(bass)))
    assert len(list(spool_rows(records, {}, [], 0.0, 0))) == 201
    counts = {"kit_subsets": 0}
    rows = list(spool_rows(records, {}, [], 0.0, 0, kit_subsets=0.5, grid=GRID, counts=counts))
    copies = [r for r in rows if r[1] != "bass.mid" and part_pitches(r[0]) - {40} < {36, 38, 42, 46}]  # kit narrowed, bass kept
    assert len(rows) == 201 + counts["kit_subsets"] and 70 <= counts["kit_subsets"] <= 130
    assert len(copies) == counts["kit_subsets"]
    assert sum(r[1] == "bass.mid" for r in rows) == 1  # no drum part: no copy
