"""The chord track of the MMM text: chord spans -> bar words -> chord spans (text/chord_track.py, decode.py)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synth import random_score

from mmmgen.config import CodecConfig
from mmmgen.text import vocab as V
from mmmgen.text.batch import scores_to_parts
from mmmgen.text.chord_track import (
    canonical_spans,
    chord_bar_texts,
    chord_track_text,
    transpose_chord,
)
from mmmgen.text.chords import Chord, ChordSpan, chord_vocabulary, parse_chord, parse_progression
from mmmgen.text.decode import text_to_piece, text_to_score
from mmmgen.text.encode import parts_to_text, score_to_windows, window_to_parts

GRID = 12
CHORDS = chord_vocabulary(with_bass=True)


def piece_text(spans, n_bars=4, meter=(4, 4), notes=True) -> str:
    bar_len = V.bar_steps(meter, GRID)
    track = " ".join([V.TRACK_START, V.inst(0), V.density(1), *[f"{V.BAR_START} {V.note_on(60)} {V.time_delta(6, GRID)} {V.note_off(60)} {V.BAR_END}"] * n_bars, V.TRACK_END])
    return " ".join([V.PIECE_START, V.time_signature(*meter), chord_track_text(spans, n_bars, bar_len, GRID), *([track] if notes else [])])


def test_a_progression_becomes_the_chord_track_and_comes_back():
    spans = parse_progression("Am F:2 G:2 C/E C:maj N", 4)
    text = piece_text(spans, n_bars=4)
    assert "TRACK_START INST=CHORDS DENSITY=0 BAR_START CHORD=A:min BAR_END BAR_START CHORD=F:maj TIME_DELTA=8 CHORD=G:maj BAR_END" in text
    assert "BAR_START CHORD=C:maj/E BAR_END BAR_START CHORD=C:maj BAR_END" in text  # the N of bar 5 is past the piece
    piece = text_to_piece(text, GRID, strict=True)
    assert [s.chord.label for s in piece.chords] == ["A:min", "F:maj", "G:maj", "C:maj/E", "C:maj"]
    assert piece.chords == canonical_spans(spans, 16 * GRID, GRID)
    assert len(piece.tracks) == 1 and piece.n_bars == 4  # the chord track is no track of notes


def test_a_chord_held_over_bars_is_restated_in_each_bar_and_merged_back():
    spans = [ChordSpan(Fraction(0), Fraction(12), parse_chord("G7"))]
    bars = chord_bar_texts(spans, 3, 4 * GRID, GRID)
    assert bars == ["BAR_START CHORD=G:7 BAR_END"] * 3
    assert text_to_piece(piece_text(spans, 3), GRID).chords == spans


def test_a_bass_that_is_no_chord_tone_is_written_in_root_position():
    assert V.chord_in_vocabulary(parse_chord("C/D")) == parse_chord("C")
    assert V.chord_in_vocabulary(parse_chord("C/G")) == parse_chord("C:maj/G")
    assert len(V.chord_words()) == 1 + 12 * 13 + 12 * 33  # N, root positions, inversions


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(CHORDS), st.integers(1, 24)), min_size=1, max_size=12),
    st.sampled_from([(4, 4), (3, 4), (6, 8), (5, 4), (2, 2)]),
    st.integers(0, 30),
    st.integers(-6, 6),
)
def test_round_trip_of_any_progression(items, meter, offset, shift):
    """decode(encode(spans)) == canonical(spans) (any chords, durations in thirds of a quarter,
    any meter, window offset and transposition), and encode(decode(text)) == text."""
    spans, t = [], Fraction(0)
    for chord, thirds in items:
        spans.append(ChordSpan(t, t + Fraction(thirds, 3), chord))
        t += Fraction(thirds, 3)
    bar_len = V.bar_steps(meter, GRID)
    n_bars = 3
    bars = chord_bar_texts(spans, n_bars, bar_len, GRID, offset, shift)
    track = " ".join([V.TRACK_START, V.chord_track_inst(), V.density(0), *bars, V.TRACK_END])
    piece = text_to_piece(f"{V.PIECE_START} {V.time_signature(*meter)} {track}", GRID, strict=True)
    assert piece.chords == canonical_spans(spans, n_bars * bar_len, GRID, offset, shift)
    assert chord_bar_texts(piece.chords, n_bars, bar_len, GRID) == bars
    assert piece.chords[0].start == 0 and piece.chords[-1].end * GRID == n_bars * bar_len


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([
    V.BAR_START, V.BAR_END, V.TRACK_START, V.TRACK_END, V.chord_track_inst(), V.inst(0), V.density(0),
    "CHORD=A:min", "CHORD=N", "CHORD=C:maj/E", "CHORD=C:maj/D", "CHORD=Am", "CHORD=", V.note_on(60), V.note_off(60),
    V.note_hold(60), V.time_delta(6, GRID), V.time_delta(48, GRID)]), max_size=40))
def test_any_words_with_chords_decode_to_a_valid_score(words):
    piece = text_to_piece(" ".join([V.PIECE_START, *words]), GRID)
    for span in piece.chords:
        assert span.end > span.start
    score = text_to_score(" ".join([V.PIECE_START, *words]), GRID)
    assert score.tpq > 0


def test_strict_decoding_rejects_chords_where_they_cannot_be():
    from mmmgen.text.decode import MMMDecodeError

    bad = [
        f"{V.PIECE_START} {V.TRACK_START} {V.inst(0)} {V.density(0)} {V.BAR_START} CHORD=A:min {V.BAR_END} {V.TRACK_END}",  # a note track
        f"{V.PIECE_START} {V.TRACK_START} INST=CHORDS {V.density(0)} {V.BAR_START} {V.note_on(60)} {V.BAR_END} {V.TRACK_END}",  # a note
        f"{V.PIECE_START} {V.TRACK_START} INST=CHORDS {V.density(0)} {V.BAR_START} CHORD=Am {V.BAR_END} {V.TRACK_END}",  # not its spelling
    ]
    for text in bad:
        with pytest.raises(MMMDecodeError):
            text_to_piece(text, GRID, strict=True)


def test_midi_of_a_piece_with_chords_is_valid_and_silent_for_the_chords(tmp_path):
    from symusic import Score

    text = piece_text(parse_progression("Am F C G", 4), n_bars=4)
    score = text_to_score(text, GRID)
    path = tmp_path / "piece.mid"
    score.dump_midi(str(path))
    back = Score(str(path))
    assert len(back.tracks) == 1 and back.note_num() == 4  # the chords sound nothing
    assert [m.text for m in back.markers] == ["A:min", "F:maj", "C:maj", "G:maj"]
    assert [m.time for m in back.markers] == [0, 4 * back.tpq, 8 * back.tpq, 12 * back.tpq]


def test_transposing_a_chord():
    assert transpose_chord(parse_chord("C/E"), 2) == Chord(2, "maj", 6)
    assert transpose_chord(parse_chord("N"), 5).is_none


def test_old_text_without_chords_decodes_as_before():
    text = piece_text([], n_bars=2).replace(chord_track_text([], 2, 48, GRID) + " ", "")
    piece = text_to_piece(text, GRID, strict=True)
    assert piece.chords == [] and piece.chord_bars == 0 and piece.n_bars == 2
    assert V.chord_track_inst() not in V.all_words() and V.chord_track_inst() in V.all_words(chords=True)


@pytest.mark.parametrize("shift", [0, 2])
def test_batch_encoder_writes_the_reference_chord_track(shift):
    """``scores_to_parts(..., chords=)`` gives what ``window_to_parts(..., chords=)`` gives."""
    from mmmgen.data.prepare import transpose_window

    scores = [random_score(seed, n_bars=9 + seed, meter=[(4, 4), (3, 4), (6, 8)][seed % 3]) for seed in range(4)]
    chords = [parse_progression("Am | F:2 G:2 | C Dm7 | E7 | Bb C", 4 * s.time_signatures[0].numerator / s.time_signatures[0].denominator) if s.time_signatures else None
              for s in scores]
    chords[1] = None  # a file without chords: no chord track
    shifts = tuple(range(-shift, shift + 1))
    config = CodecConfig(bars=4)
    got = scores_to_parts(scores, config, [shifts] * len(scores), chords)
    for score, spans, found in zip(scores, chords, got, strict=True):
        expected = []
        for window in score_to_windows(score, config):
            for k in shifts:
                w = transpose_window(window, k) if k else window
                if w.n_notes >= 1:
                    expected.append({"start_bar": w.start_bar, "ts": list(w.time_signature), "transpose": k,
                                     "parts": window_to_parts(w, config.grid, spans, k)})
        assert found == expected
        has_chords = [p[0][0] == V.chord_track_inst() for p in (w["parts"] for w in found)]
        assert all(has_chords) if spans is not None else not any(has_chords)
    text = parts_to_text((4, 4), "POP", got[0][0]["parts"], [1.0, 5.0])
    assert text.split()[3:7] == [V.TRACK_START, V.chord_track_inst(), V.density(0), V.BAR_START]
    assert text_to_piece(text, GRID, strict=True).chords
