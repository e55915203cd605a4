"""Chord reading (mmmgen.text.harmony) on hand-made progressions whose chords are known."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synth import make_score

from mmmgen.text.chord_eval import compare_chords
from mmmgen.text.chords import (
    QUALITIES,
    Chord,
    ChordError,
    ChordSpan,
    parse_chord,
    parse_progression,
)
from mmmgen.text.harmony import (
    beats_to_seconds,
    chords_from_csv,
    chords_to_csv,
    format_chord_bars,
    read_chords,
    short_label,
)


def block(progression: str, bar_beats: float = 4, octave: int = 48, inversion_bass: bool = True):
    """Notes of a progression as block chords: the bass (its slash note, else the root) an octave down."""
    notes = []
    for span in parse_progression(progression, bar_beats):
        if span.chord.is_none:
            continue
        start, length = float(span.start), float(span.duration)
        notes.append((octave - 12 + span.chord.bass_class, start, length))
        notes += [(octave + (span.chord.root + step) % 12, start, length) for step in QUALITIES[span.chord.quality]]
    return notes


def labels(spans):
    return [(s.chord.label, float(s.start), float(s.end)) for s in spans]


def read(tracks, meters=((0, 4, 4),), **kw):
    return read_chords(make_score(tracks, list(meters)), **kw)


def test_one_chord_per_bar():
    spans = read([(0, False, block("Am F C G"))])
    assert labels(spans) == [("A:min", 0, 4), ("F:maj", 4, 8), ("C:maj", 8, 12), ("G:maj", 12, 16)]


def test_inversions_name_their_bass():
    spans = read([(0, False, block("C C/E F/A G/B Am/C"))])
    assert [s.chord.label for s in spans] == ["C:maj", "C:maj/E", "F:maj/A", "G:maj/B", "A:min/C"]


@pytest.mark.parametrize("chord", ["G7", "Cmaj7", "Dm7", "Bm7b5", "Bdim7", "F6", "Am6", "Dsus4", "Dsus2", "Caug", "Bdim"])
def test_four_note_and_rare_qualities(chord):
    spans = read([(0, False, block(f"C {chord} C"))])
    assert spans[1].chord == parse_chord(chord) and (spans[1].start, spans[1].end) == (4, 8)


def test_passing_tones_do_not_change_the_chord():
    chords = block("C F G C")
    # per bar: chord tones on the beats, a scale step (not in the chord) on two off-beat eighths
    tones = {0: (72, 76, 74, 79, 77), 1: (77, 81, 79, 84, 82), 2: (79, 83, 81, 74, 72), 3: (72, 76, 77, 79, 81)}
    rhythm = ((0, 1), (1, 0.5), (1.5, 0.5), (2, 1.5), (3.5, 0.5))  # quarter, eighth, passing eighth, ..., passing eighth
    melody = [(tones[bar][i], bar * 4 + at, length) for bar in range(4) for i, (at, length) in enumerate(rhythm)]
    spans = read([(0, False, chords), (73, False, melody)])
    assert [s.chord.label for s in spans] == ["C:maj", "F:maj", "G:maj", "C:maj"]


def test_arpeggios_are_read_whole():
    notes = []
    for bar, chord in enumerate(["Am", "Dm", "E7", "Am"]):
        c = parse_chord(chord)
        tones = [45 + (c.root + 3) % 12 + s for s in QUALITIES[c.quality]]  # root position from A2 to G#3
        pattern = [tones[0] - 12, *tones, tones[1] + 12, *tones[:2]][:8]  # one note at a time, eighths
        notes += [(p, bar * 4 + i * 0.5, 0.5) for i, p in enumerate(pattern)]
    spans = read([(24, False, notes)])
    assert [s.chord.label for s in spans] == ["A:min", "D:min", "E:7", "A:min"]


def test_rests_are_no_chord():
    notes = block("C") + [(p, 8 + s, d) for p, s, d in block("G")]  # bar 2 is silent
    spans = read([(0, False, notes)])
    assert labels(spans) == [("C:maj", 0, 4), ("N", 4, 8), ("G:maj", 8, 12)]


def test_drums_are_ignored():
    drums = [(p, q * 0.5, 0.25) for q in range(32) for p in (36, 42, 49)]
    spans = read([(0, False, block("Am F C G")), (0, True, drums)])
    assert [s.chord.label for s in spans] == ["A:min", "F:maj", "C:maj", "G:maj"]


def test_five_four_reads_a_chord_per_bar():
    spans = read([(0, False, block("Dm G C", bar_beats=5))], meters=[(0, 5, 4)])
    assert labels(spans) == [("D:min", 0, 5), ("G:maj", 5, 10), ("C:maj", 10, 15)]


def test_six_eight_changes_on_the_dotted_quarter():
    # 6/8: two beats of a dotted quarter; the chords change on the second one, then a whole bar of D
    notes = block("G:1.5 C:1.5 | D", bar_beats=3)
    spans = read([(0, False, notes)], meters=[(0, 6, 8)])
    assert labels(spans) == [("G:maj", 0, 1.5), ("C:maj", 1.5, 3), ("D:maj", 3, 6)]


def test_harmonic_rhythm_follows_the_music():
    per_beat = read([(0, False, block("C:1 Am:1 F:1 G:1 | C"))])
    assert labels(per_beat) == [("C:maj", 0, 1), ("A:min", 1, 2), ("F:maj", 2, 3), ("G:maj", 3, 4), ("C:maj", 4, 8)]
    halves = read([(0, False, block("C:2 G:2 | F:2 C:2"))])
    assert [(s.chord.label, float(s.start)) for s in halves] == [("C:maj", 0), ("G:maj", 2), ("F:maj", 4), ("C:maj", 6)]
    # asked for one chord per bar, the reader gives the bar's best single chord
    assert all(s.start % 4 == 0 and s.end % 4 == 0 for s in read([(0, False, block("C:2 G:2 | F:2 C:2"))], resolution="bar"))


def test_meter_change_and_any_time_unit():
    notes = block("C G", bar_beats=4) + [(p, s + 8, d) for p, s, d in block("F Am", bar_beats=3)]
    score = make_score([(0, False, notes)], [(0, 4, 4), (8, 3, 4)])
    expected = [("C:maj", 0, 4), ("G:maj", 4, 8), ("F:maj", 8, 11), ("A:min", 11, 14)]
    assert labels(read_chords(score)) == expected
    assert labels(read_chords(score.to("quarter"))) == expected
    assert labels(read_chords(score.to("second"))) == expected


def test_nothing_to_read():
    assert read_chords(make_score([])) == []
    assert read_chords(make_score([(0, True, [(36, 0, 1)])])) == []  # drums only
    with pytest.raises(ChordError, match="resolution"):
        read_chords(make_score([]), resolution="eighth")


_CHORDS = [Chord(root, quality) for root in range(12) for quality in QUALITIES]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(_CHORDS), min_size=1, max_size=6).filter(lambda cs: all(a != b for a, b in itertools.pairwise(cs))))
def test_any_progression_of_root_position_block_chords_reads_back(chords):
    spans = read([(0, False, block(" ".join(c.label for c in chords)))])
    assert [s.chord for s in spans] == chords


def test_csv_round_trip_and_tempo_map():
    score = make_score([(0, False, block("Am F C G"))])
    score.tempos.append(type(score.tempos[0])(8 * score.tpq, qpm=60.0))  # 120 qpm, then 60 from beat 8
    spans = read_chords(score)
    text = chords_to_csv(spans, score)
    assert text.splitlines()[0] == "start_beat,end_beat,start_s,end_s,chord"
    assert text.splitlines()[3] == "8,12,4,8,C:maj" and text.splitlines()[4] == "12,16,8,12,G:maj"
    assert chords_from_csv(text) == spans
    odd = [ChordSpan(Fraction(1, 3), Fraction(7, 6), parse_chord("C/E")), ChordSpan(Fraction(7, 6), Fraction(5), parse_chord("N"))]
    assert chords_from_csv(chords_to_csv(odd, score)) == odd
    assert list(beats_to_seconds([0, 4, 8, 10], score)) == [0, 2, 4, 6]


@pytest.mark.parametrize("bad", ["", "a,b\n1,2", "start_beat,end_beat,start_s,end_s,chord\n4,2,0,0,C", "start_beat,end_beat,start_s,end_s,chord\nx,2,0,0,C",
                                 "start_beat,end_beat,start_s,end_s,chord\n0,2,0,0,Hm"])
def test_bad_csv_is_named(bad):
    with pytest.raises(ChordError, match=r"CSV|chord"):
        chords_from_csv(bad)


def test_bars_print_a_word_per_beat():
    score = make_score([(0, False, block("Am:2 F:2 | C G/B"))])
    text = format_chord_bars(read_chords(score), score)
    assert text.splitlines() == ["bar   1 | Am . F . |", "bar   2 | C . G/B . |"]
    assert format_chord_bars([], score).startswith("(no notes")


@pytest.mark.parametrize("chord", [*_CHORDS[::7], parse_chord("C/E"), parse_chord("N")])
def test_short_labels_read_back(chord):
    assert parse_chord(short_label(chord)) == chord


def test_compare_chords_counts_beats():
    truth = parse_progression("Am F C Gsus4")
    same = compare_chords(truth, truth).shares()
    assert same == {"majmin": 1.0, "root": 1.0, "quality": 1.0, "bass": 1.0, "beats": 16}
    wrong = compare_chords(truth, parse_progression("A F:7 Am G")).shares()
    # majmin leaves the sus4 bar out: A vs Am wrong, F7 counts as F major, Am vs C wrong
    assert wrong["majmin"] == pytest.approx(1 / 3, abs=1e-3) and wrong["root"] == 0.75 and wrong["quality"] == 0
    assert compare_chords(truth, []).shares()["root"] == 0


def test_odd_files_read_within_bounds():
    # a note one tick long, one far later, one past what is read (MAX_STEPS), a meter event after the music
    notes = [*block("C G"), (60, 8, 1 / 480), (64, 10000.0, 1.0), (67, 40000.0, 1.0)]
    spans = read_chords(make_score([(0, False, notes)], [(0, 4, 4), (20000, 3, 4)]))
    assert [s.chord.label for s in spans[:2]] == ["C:maj", "G:maj"]
    assert all(a.end == b.start for a, b in itertools.pairwise(spans))
    assert spans[-2].chord.is_none and (spans[-1].start, spans[-1].end) == (10000, 10004)  # silence, then the far note's bar


def test_a_melody_alone_gets_the_keys_chords():
    # one note at a time, chord tones on the beats and a passing tone: I IV V I in G major
    bars = [(67, 71, 74, 72), (72, 76, 79, 77), (74, 78, 81, 79), (79, 74, 71, 67)]
    melody = [(p, 4 * bar + beat, 1.0) for bar, notes in enumerate(bars) for beat, p in enumerate(notes)]
    spans = read([(73, False, melody)])
    assert [s.chord.label for s in spans] == ["G:maj", "C:maj", "D:maj", "G:maj"]


def test_key_of_a_scale():
    import numpy as np

    from mmmgen.text.keys import key_of

    c_major = np.zeros(12)
    c_major[[0, 2, 4, 5, 7, 9, 11]] = 1.0
    c_major[[0, 4, 7]] += 1.0  # the tonic triad sounds most
    assert key_of(c_major) == (0, 0)
    a_minor = np.zeros(12)
    a_minor[[9, 11, 0, 2, 4, 5, 8]] = 1.0  # A harmonic minor (G# leading tone)
    a_minor[[9, 0, 4]] += 1.0  # A C E sound most
    assert key_of(a_minor) == (9, 1)
