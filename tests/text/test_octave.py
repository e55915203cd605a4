"""Octave copies (``prepare --octave-copies``): moving a part's text is encoding the moved notes, one
pitched part moves, drums and the chord track never do."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mmmgen.data.write import spool_rows
from mmmgen.text import vocab as V
from mmmgen.text.encode import TrackNotes, track_to_bar_texts
from mmmgen.text.kit import part_pitches
from mmmgen.text.octave import octave_copy, shift_part

GRID, BARS, BAR = 12, 4, 48


def track(notes, is_drum=False, program=33) -> TrackNotes:
    rows = sorted({(p, s, s + d, 64) for p, s, d in notes}, key=lambda n: (n[1], n[0]))
    return TrackNotes(program, is_drum, np.array(rows, dtype=np.int64).reshape(-1, 4))


def text_of(t: TrackNotes) -> str:
    return " ".join(track_to_bar_texts(t, BARS, BAR, GRID))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(12, 115), st.integers(0, BARS * BAR - 1), st.integers(1, 2 * BAR)), min_size=1, max_size=30),
       st.sampled_from([-12, 12]))
def test_shifting_a_part_is_encoding_the_moved_notes(notes, semitones):
    moved = [(p + semitones, s, d) for p, s, d in notes]
    assert shift_part(text_of(track(notes)), semitones) == text_of(track(moved))


def parts_of(*tracks):
    return [(t.word, len(t.notes), text_of(t)) for t in tracks]


def test_octave_copy_moves_one_pitched_part_within_range():
    drums = track([(36, 0, 1), (38, 12, 1)], is_drum=True)
    bass = track([(28, 0, 24), (31, 48, 24)])
    top = track([(120, 0, 12), (118, 96, 12)], program=73)  # can only go down
    parts = parts_of(drums, bass, top)
    seen = set()
    for seed in range(60):
        moved = octave_copy(parts, random.Random(seed))
        changed = [i for i, (a, b) in enumerate(zip(parts, moved, strict=True)) if a != b]
        assert len(changed) == 1 and changed[0] in (1, 2)
        i = changed[0]
        shift = min(part_pitches(moved[i][2])) - min(part_pitches(parts[i][2]))
        assert shift in (-12, 12) and moved[i][:2] == parts[i][:2]
        assert i != 2 or shift == -12
        seen.add((i, shift))
    assert seen == {(1, -12), (1, 12), (2, -12)}
    assert octave_copy(parts_of(drums), random.Random(0)) is None


def test_spool_rows_add_octave_copies_to_windows_with_a_pitched_part():
    bass = track([(40, 0, 24)])
    drums = track([(36, 0, 1)], is_drum=True)
    records = [(f"s{i}.mid", 0, (4, 4), 0, parts_of(bass, drums)) for i in range(100)] + [("d.mid", 0, (4, 4), 0, parts_of(drums))]
    counts = {"octave_copies": 0}
    rows = list(spool_rows(records, {}, [], 0.0, 0, grid=GRID, counts=counts, octave_copies=1.0))
    assert counts["octave_copies"] == 100 and len(rows) == 201
    copies = [r for r in rows if part_pitches(r[0]) & {28, 52}]
    assert len(copies) == 100 and all(V.note_on(36) in r[0] for r in copies)
