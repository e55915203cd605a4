"""The MMM codec: round trips over synthetic and real music, meters, ties, and a decoder that never fails."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from symusic import Score
from synth import make_score, random_score, write, write_type0

from mmmgen.config import CodecConfig
from mmmgen.text import vocab as V
from mmmgen.text.decode import MMMDecodeError, piece_to_score, text_to_piece, text_to_score
from mmmgen.text.encode import (
    bar_steps,
    meter_segments,
    quantize_notes,
    score_to_texts,
    score_to_windows,
    window_to_text,
)

GRID = 12


def reassemble(score: Score, config: CodecConfig) -> dict[tuple[int, bool], set]:
    """Decode every window and put the notes back on the score's time line.

    Notes cut at a window boundary are joined again, so the result is comparable with the
    quantized input note for note.
    """
    notes: dict[tuple[int, bool], list] = defaultdict(list)
    held = set()  # (track, pitch, time): notes the window text holds over from before it
    for w in score_to_windows(score, config):
        piece = text_to_piece(window_to_text(w, grid=config.grid), config.grid, strict=True)
        assert piece.n_bars == w.n_bars
        offset = w.start_bar * w.bar_steps
        for src, track in zip(w.tracks, piece.tracks, strict=True):
            key = (track.program, track.is_drum)
            held |= {(key, int(p), offset) for p in src.notes[src.notes[:, 1] < 0, 0]}
            for p, s, e, _ in track.notes:
                notes[key].append((p, s + offset, e + offset))
    merged = {}
    for key, items in notes.items():
        by_end = {}
        for p, s, e in sorted(items, key=lambda n: n[1]):
            if (key, p, s) in held and (p, s) in by_end:  # continuation of a note cut at the window edge
                by_end[(p, e)] = by_end.pop((p, s))
            else:
                by_end[(p, e)] = s
        merged[key] = {(p, s, e) for (p, e), s in by_end.items()}
    return merged


def quantized(score: Score, grid: int = GRID) -> dict[tuple[int, bool], set]:
    return {  # INST=DRUMS carries no program: drum kits decode as program 0
        (0 if t.is_drum else t.program, t.is_drum): {tuple(int(x) for x in n[:3]) for n in quantize_notes(t.notes.numpy(), score.tpq, grid)}
        for t in score.tracks
        if len(t.notes)
    }


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("meter", [(4, 4), (3, 4), (6, 8), (5, 4), (12, 8), (2, 2), (4, 2), (7, 8)])
def test_round_trip_random_music(seed, meter):
    score = random_score(seed, n_bars=11, meter=meter, tpq=[480, 384, 96, 120][seed % 4])
    config = CodecConfig(bars=4)
    assert reassemble(score, config) == quantized(score)


def test_every_note_comes_back_with_short_windows_and_grid_24():
    score = random_score(3, n_bars=9)
    assert reassemble(score, CodecConfig(bars=3, grid=24)) == quantized(score, 24)


def test_tie_over_bar_line_is_held_not_reattacked():
    score = make_score([(0, False, [(60, 3, 2), (64, 0, 1)])])  # 60 from beat 4 of bar 1 to beat 1 of bar 2
    (text,) = score_to_texts(score, CodecConfig(bars=2))
    bars = text.split(V.BAR_START)[1:]
    assert V.note_on(60) in bars[0] and V.note_off(60) not in bars[0]
    assert bars[1].split()[0] == V.note_hold(60) and V.note_on(60) not in bars[1]
    piece = text_to_piece(text, strict=True)
    assert sorted(piece.tracks[0].notes) == [(60, 36, 60, 80), (64, 0, 12, 80)]


def test_bar_can_be_replaced_alone():
    score = make_score([(0, False, [(60, 3, 2), (62, 5, 4), (67, 8, 1), (48, 0, 12)])])  # ties over every bar line
    (text,) = score_to_texts(score, CodecConfig(bars=3))
    original = text_to_piece(text, strict=True).tracks[0].notes
    head, *bars = text.split(" BAR_START ")
    bar_len = bar_steps((4, 4), GRID)
    for i in range(3):  # empty bar i: strict-valid, and only what sounded in bar i changes
        edited = [b if j != i else "BAR_END" + b[b.index("BAR_END") + 7 :] for j, b in enumerate(bars)]
        piece = text_to_piece(" BAR_START ".join([head, *edited]), strict=True)
        b0, b1 = i * bar_len, (i + 1) * bar_len
        expected = set()
        for p, s, e, v in original:
            if e <= b0 or s >= b1:
                expected.add((p, s, e, v))
                continue
            if s < b0:
                expected.add((p, s, b0, v))  # the tie into the emptied bar ends at its bar line
            if e > b1:
                expected.add((p, b1, e, v))  # a tie out of it starts at the next bar line
        assert set(piece.tracks[0].notes) == expected


def test_quantize_cleans_what_text_cannot_hold():
    notes = {
        "time": np.array([0, 0, 240, 480]),
        "duration": np.array([480, 240, 960, 1]),
        "pitch": np.array([60, 60, 60, 62]),
        "velocity": np.array([80, 80, 80, 80]),
    }
    q = quantize_notes(notes, 480, 12)
    # duplicate onset keeps the longest; a re-strike cuts the sounding note; a tiny note lasts one step
    assert q[:, :3].tolist() == [[60, 0, 6], [60, 6, 30], [62, 12, 13]]


def test_triplets_and_sixteenths_are_exact():
    notes = [(60 + i, i / 3, 1 / 3) for i in range(6)] + [(72 + i, 2 + i / 4, 1 / 4) for i in range(8)]
    score = make_score([(0, False, notes)])
    (text,) = score_to_texts(score, CodecConfig(bars=1))
    deltas = {w for w in text.split() if w.startswith(V.TIME_DELTA)}
    assert deltas == {V.time_delta(4, GRID), V.time_delta(3, GRID)}  # 4/3 and 1 sixteenth
    assert reassemble(score, CodecConfig(bars=1)) == quantized(score)


def test_time_delta_words_are_canonical_and_parse_back():
    words = [V.time_delta(s, GRID) for s in range(1, V.max_time_delta_steps(GRID) + 1)]
    assert len(set(words)) == len(words)
    for s, w in enumerate(words, 1):
        assert V.parse_time_delta(V.parse_word(w).value, GRID) == s
    assert V.time_delta(12, GRID) == "TIME_DELTA=4"  # a quarter note is four sixteenths
    assert V.parse_time_delta("4.0", GRID) == 12  # the tutorial's spelling


def test_vocabulary_is_small_and_covers_the_grammar():
    words = V.all_words(genres=["Hip Hop", "BACH"])
    assert len(words) + len(V.SPECIAL_TOKENS) < 700
    assert len(set(words)) == len(words)
    assert "GENRE=HIP_HOP" in words and "INST=DRUMS" in words and "TIME_SIGNATURE=6_8" in words


@pytest.mark.parametrize(("label", "expected"), [("Hip Hop", "HIP_HOP"), ("r&b", "R_B"), ("", "OTHER"), (None, "OTHER")])
def test_genre_labels_are_one_word(label, expected):
    assert V.normalize_genre(label) == expected


def test_meter_change_makes_segments_not_drops():
    notes = [(60, q, 1) for q in range(0, 16)] + [(62, 16 + q, 1) for q in range(0, 12)]
    score = make_score([(0, False, notes)], meters=[(0, 4, 4), (16, 3, 4)])
    assert [(s, n, m) for s, n, m in meter_segments(score, GRID)] == [(0, 4, (4, 4)), (16 * GRID, 4, (3, 4))]
    texts = score_to_texts(score, CodecConfig(bars=4))
    assert [t.split()[1] for t in texts] == ["TIME_SIGNATURE=4_4", "TIME_SIGNATURE=3_4"]
    assert [text_to_piece(t).tracks[0].notes[0][0] for t in texts] == [60, 62]


def test_short_piece_is_padded_with_silent_bars():
    score = make_score([(0, False, [(60, 0, 4), (62, 4, 4)])])  # two bars of music
    windows = score_to_windows(score, CodecConfig(bars=8))
    assert len(windows) == 1 and windows[0].n_bars == 8
    assert text_to_piece(window_to_text(windows[0])).n_bars == 8


def test_type0_file_is_split_by_channel(tmp_path):
    path = write_type0(tmp_path / "t0.mid", {0: (33, [40, 41, 43]), 1: (0, [60, 62, 64]), 9: (0, [36, 38, 42])})
    (text,) = score_to_texts(Score(str(path)), CodecConfig(bars=1))
    insts = [w for w in text.split() if w.startswith(V.INST)]
    assert sorted(insts) == sorted([V.inst(33), V.inst(0), V.inst(0, is_drum=True)])


def test_strict_decoding_names_the_problem():
    with pytest.raises(MMMDecodeError, match="NOTE_OFF without NOTE_ON at word 6"):
        text_to_piece("PIECE_START TRACK_START INST=0 DENSITY=0 BAR_START NOTE_ON=60 NOTE_OFF=61 BAR_END TRACK_END", strict=True)
    with pytest.raises(MMMDecodeError, match="unknown word"):
        text_to_piece("PIECE_START TRACK_START INST=0 BANANA TRACK_END", strict=True)


def test_lenient_decoding_skips_and_counts():
    piece = text_to_piece(
        "PIECE_START TIME_SIGNATURE=3_4 TRACK_START INST=0 BAR_START NOTE_OFF=61 BANANA NOTE_ON=60 TIME_DELTA=99 TRACK_END"
    )
    assert piece.issues == {"NOTE_OFF without NOTE_ON": 1, "unknown word": 1, "TIME_DELTA past the bar end": 1, "missing BAR_END": 1}
    assert piece.tracks[0].notes == [(60, 0, bar_steps((3, 4), GRID), 80)]


def test_tutorial_text_decodes():
    text = (
        "PIECE_START TIME_SIGNATURE=4_4 BPM=90 TRACK_START INST=0 DENSITY=1 BAR_START NOTE_ON=69 TIME_DELTA=4.0 NOTE_OFF=69 "
        "NOTE_ON=71 TIME_DELTA=0.010416666666666519 TIME_DELTA=1.9895833333333335 NOTE_OFF=71 BAR_END TRACK_END "
        "TRACK_START INST=1 DENSITY=0 TRACK_END PIECE_END"
    )
    piece = text_to_piece(text, strict=True)
    assert piece.tempo == 90 and piece.tracks[0].notes == [(69, 0, 12, 80), (71, 12, 18, 80)]
    assert piece.tracks[1].notes == []


ALL_WORDS = [*V.all_words(genres=["POP"]), "BANANA", "NOTE_ON=300", "TIME_DELTA=x", "TIME_DELTA=-3", "INST=", "BPM=fast"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(ALL_WORDS), max_size=120), st.sampled_from([4, 12, 24]))
def test_any_word_sequence_decodes_to_a_valid_score(words, grid):
    text = " ".join(words)
    piece = text_to_piece(text, grid)
    bar_len = bar_steps(piece.time_signature, grid)
    for track in piece.tracks:
        for p, s, e, v in track.notes:
            assert 0 <= p < 128 and 0 <= s < e <= max(track.n_bars, 1) * bar_len and 0 <= v < 128
    score = piece_to_score(piece, grid)
    assert Score.from_midi(score.dumps_midi()).note_num() == sum(len(t.notes) for t in piece.tracks)
    try:
        text_to_piece(text, grid, strict=True)
    except MMMDecodeError:
        pass


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000))
def test_encoded_text_is_strictly_valid(seed):
    score = random_score(seed, n_bars=5, meter=[(4, 4), (3, 4), (6, 8)][seed % 3])
    for text in score_to_texts(score, CodecConfig(bars=2)):
        text_to_piece(text, strict=True)


@pytest.mark.parametrize("hop", [None, 3])
def test_small_and_large_scores_are_cut_alike(monkeypatch, hop):
    """Windows are cut with one set of numpy calls for all tracks of a small score and by binary
    search per track for a large one: the same texts either way."""
    from mmmgen.text import encode as E

    config = CodecConfig(bars=4, hop=hop)
    scores = [random_score(seed, n_bars=13, meter=[(4, 4), (3, 4), (6, 8)][seed % 3]) for seed in range(6)]
    small = [score_to_texts(s, config) for s in scores]
    monkeypatch.setattr(E._Cutter, "SMALL", 0)
    assert [score_to_texts(s, config) for s in scores] == small
    assert all(small)


def _music21_midi(tmp_path: Path, work: str) -> Path:
    music21 = pytest.importorskip("music21")
    path = tmp_path / (work.replace("/", "_") + ".mid")
    music21.corpus.parse(work).write("midi", fp=str(path))
    return path


@pytest.mark.parametrize(
    "work", ["bach/bwv66.6", "bach/bwv7.7", "mozart/k80/movement4", pytest.param("beethoven/opus18no1", marks=pytest.mark.slow)]
)
def test_round_trip_real_music(tmp_path, work):
    score = Score(str(_music21_midi(tmp_path, work)))
    for i, track in enumerate(score.tracks):  # music21 writes program 0 everywhere: tell parts apart
        track.program = i
    assert reassemble(score, CodecConfig()) == quantized(score)


def test_text_to_score_writes_playable_midi(tmp_path):
    score = random_score(1, n_bars=4)
    text = score_to_texts(score, CodecConfig(bars=4))[0]
    out = text_to_score(text, tempo=100)
    path = write(out, tmp_path / "x.mid")
    back = Score(str(path))
    assert back.note_num() == out.note_num() > 0
    assert round(back.tempos[0].qpm) == 100
