"""The chord vocabulary and the spellings it reads (mmmgen.text.chords)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmmgen.text.chords import (
    NO_CHORD,
    QUALITIES,
    Chord,
    ChordError,
    chord_vocabulary,
    parse_chord,
    parse_progression,
)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Am", "A:min"), ("F#m7", "F#:min7"), ("Cmaj7", "C:maj7"), ("G7", "G:7"), ("Bb", "Bb:maj"),
        ("Edim", "E:dim"), ("Fsus4", "F:sus4"), ("C/E", "C:maj/E"), ("A:min", "A:min"), ("Bm7b5", "B:hdim7"),
        ("Eø7", "E:hdim7"), ("A-7", "A:min7"), ("Caug", "C:aug"), ("C+", "C:aug"), ("Dsus2", "D:sus2"),
        ("Bdim7", "B:dim7"), ("F6", "F:6"), ("Gm6", "G:min6"), ("CM7", "C:maj7"), ("Db", "C#:maj"),
        ("G:7", "G:7"), ("C:maj/E", "C:maj/E"), ("Am/G", "A:min/G"), ("N.C.", "N"), ("N", "N"), ("E#", "F:maj"),
    ],
)
def test_musician_spellings(text, label):
    assert parse_chord(text).label == label


def test_pitch_classes_and_bass():
    assert parse_chord("Am").pitch_classes == {9, 0, 4}
    assert parse_chord("G7").pitch_classes == {7, 11, 2, 5}
    c_e = parse_chord("C/E")
    assert c_e.bass_class == 4 and c_e.root == 0 and c_e.pitch_classes == {0, 4, 7}
    assert parse_chord("C/D").pitch_classes == {0, 2, 4, 7}  # a bass outside the chord sounds too
    assert parse_chord("C/C") == parse_chord("C")  # a bass equal to the root is no inversion
    assert NO_CHORD.pitch_classes == frozenset() and NO_CHORD.bass_class is None


@pytest.mark.parametrize("bad", ["H7", "Cxyz", "", "7", "C/H", "Am:0"])
def test_bad_chords_are_named(bad):
    with pytest.raises(ChordError, match=r"bad|empty|unknown|positive"):
        parse_progression(bad) if bad in ("", "Am:0") else parse_chord(bad)


@given(st.sampled_from(chord_vocabulary(with_bass=True)))
def test_label_round_trip(chord):
    assert parse_chord(chord.label) == chord


def test_vocabulary_size():
    assert len(chord_vocabulary()) == 1 + 12 * len(QUALITIES)
    assert len(set(chord_vocabulary(with_bass=True))) == 1 + 12 * len(QUALITIES) * 12


def test_progression_one_chord_per_bar():
    spans = parse_progression("Am F C G", bar_beats=3)
    assert [s.chord.label for s in spans] == ["A:min", "F:maj", "C:maj", "G:maj"]
    assert [(s.start, s.end) for s in spans] == [(0, 3), (3, 6), (6, 9), (9, 12)]


def test_progression_beats_and_bars():
    spans = parse_progression("Am:2 F:2 C")
    assert [(s.chord.label, s.start, s.end) for s in spans] == [("A:min", 0, 2), ("F:maj", 2, 4), ("C:maj", 4, 8)]
    spans = parse_progression("Am F G:1 | C | Dm7:1.5 G7")
    assert [(s.chord.label, s.duration) for s in spans] == [
        ("A:min", Fraction(3, 2)), ("F:maj", Fraction(3, 2)), ("G:maj", 1), ("C:maj", 4),
        ("D:min7", Fraction(3, 2)), ("G:7", Fraction(5, 2)),
    ]
    assert spans[-1].end == 12
    # "G:7" is the chord G7, not G for seven beats
    assert parse_progression("G:7")[0].chord.label == "G:7"
    assert parse_progression("G:2")[0].duration == 2


def test_progression_overfull_bar_is_an_error():
    with pytest.raises(ChordError, match="no time"):
        parse_progression("Am:4 F | C")


def test_unknown_quality_in_constructor():
    with pytest.raises(ChordError, match="quality"):
        Chord(0, "weird")
