"""Text in the tutorial's style (float deltas, re-attacks, ``BPM=``) decodes as the tutorial's decoder reads it."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from symusic import Score

from mmmgen.render.files import render_file
from mmmgen.text import vocab as V
from mmmgen.text.decode import piece_to_score, text_to_piece, text_to_score

GRID = 12
BAR = V.bar_steps((4, 4), GRID)


def one_bar(body: str, meter: str = "4_4", head: str = "") -> str:
    return f"PIECE_START TIME_SIGNATURE={meter} {head} TRACK_START INST=0 DENSITY=0 BAR_START {body} BAR_END TRACK_END PIECE_END"


def notes_of(text: str) -> list[tuple[int, int, int]]:
    return sorted(n[:3] for n in text_to_piece(text, GRID).tracks[0].notes)


def test_reattack_ends_the_sounding_note_and_starts_a_new_one():
    piece = text_to_piece(one_bar("NOTE_ON=60 TIME_DELTA=2.0 NOTE_ON=60 TIME_DELTA=2.0 NOTE_OFF=60"), GRID)
    assert [n[:3] for n in piece.tracks[0].notes] == [(60, 0, 6), (60, 6, 12)]
    assert piece.issues == {"NOTE_ON of a sounding pitch": 1}


def test_note_on_before_note_off_at_the_same_instant_keeps_both_notes():
    # the tutorial's encoder writes a re-struck pitch's NOTE_ON before the old note's NOTE_OFF;
    # its decoder lets the pitch's last NOTE_OFF end the new note
    text = one_bar("NOTE_ON=64 TIME_DELTA=2.0 NOTE_ON=64 NOTE_OFF=64 TIME_DELTA=2.0 NOTE_OFF=64")
    assert notes_of(text) == [(64, 0, 6), (64, 6, 12)]


def test_note_off_of_a_silent_pitch_is_ignored_and_counted():
    piece = text_to_piece(one_bar("NOTE_OFF=61 NOTE_ON=60 TIME_DELTA=4.0 NOTE_OFF=60"), GRID)
    assert [n[:3] for n in piece.tracks[0].notes] == [(60, 0, 12)]
    assert piece.issues == {"NOTE_OFF without NOTE_ON": 1}


def test_note_without_note_off_lasts_to_the_bar_line():
    assert notes_of(one_bar("NOTE_ON=60 TIME_DELTA=1.0 NOTE_ON=62 TIME_DELTA=1.0 NOTE_OFF=62")) == [(60, 0, BAR), (62, 3, 6)]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("NOTE_ON=60 NOTE_OFF=60 TIME_DELTA=4.0", [(60, 0, 1)]),  # off at its own onset
        ("TIME_DELTA=16.0 NOTE_ON=60 NOTE_OFF=60", [(60, BAR - 1, BAR)]),  # at the bar end: kept inside the bar
        ("TIME_DELTA=16.0 NOTE_ON=60", [(60, BAR - 1, BAR)]),  # never closed, at the bar end
        ("NOTE_ON=60 NOTE_ON=60 TIME_DELTA=4.0 NOTE_OFF=60", [(60, 0, 1), (60, 0, 12)]),
    ],
)
def test_zero_length_notes_get_the_shortest_grid_length(body, expected):
    piece = text_to_piece(one_bar(body), GRID)
    assert sorted(n[:3] for n in piece.tracks[0].notes) == expected
    assert piece.issues["note of zero length"] == 1


def test_float_deltas_add_up_instead_of_rounding_each():
    # 0.10833 sixteenths is a third of a step at grid 12: rounded one by one, ten of them are 0 steps
    body = "TIME_DELTA=0.10833 " * 10 + "NOTE_ON=60 TIME_DELTA=4.0 NOTE_OFF=60"
    assert notes_of(one_bar(body)) == [(60, 3, 15)]
    # float noise of the tutorial's encoder does not overfill a bar
    body = "NOTE_ON=60 " + "TIME_DELTA=0.21875 " * 64 + "TIME_DELTA=2.0 NOTE_OFF=60"
    piece = text_to_piece(one_bar(body), GRID)
    assert piece.tracks[0].notes[0][:3] == (60, 0, BAR) and not piece.issues


def test_bpm_sets_the_rendered_tempo(tmp_path):
    text = one_bar("NOTE_ON=60 TIME_DELTA=4.0 NOTE_OFF=60", "6_8", "BPM=84")
    assert text_to_piece(text).tempo == 84
    assert text_to_score(text).tempos[0].qpm == pytest.approx(84, abs=0.01)
    (tmp_path / "t.txt").write_text(text + "\n")
    (midi,) = render_file(tmp_path / "t.txt", tmp_path / "out", "mid")
    back = Score(str(midi))
    assert round(back.tempos[0].qpm) == 84 and back.note_num() == 1
    assert (back.time_signatures[0].numerator, back.time_signatures[0].denominator) == (6, 8)


@pytest.mark.parametrize("bpm", ["0", "-90", "nan", "inf", "fast", ""])
def test_bad_bpm_is_counted_and_plays_at_120(bpm):
    piece = text_to_piece(one_bar("NOTE_ON=60 TIME_DELTA=4.0 NOTE_OFF=60", head=f"BPM={bpm}"))
    assert piece.issues == {"bad BPM": 1} and piece.tempo is None
    assert piece_to_score(piece).tempos[0].qpm == 120


def test_text_cut_off_mid_bar_keeps_its_notes():
    text = "PIECE_START TIME_SIGNATURE=4_4 TRACK_START INST=0 BAR_START NOTE_ON=60 TIME_DELTA=4.0 PIECE_END"
    piece = text_to_piece(text)
    assert [n[:3] for n in piece.tracks[0].notes] == [(60, 0, BAR)]
    cut = "PIECE_START TRACK_START INST=0 BAR_START NOTE_ON=60 TIME_DELTA=4.0 TRACK_START INST=1 BAR_START NOTE_ON=62 TIME_DELTA=4.0 NOTE_OFF=62"
    piece = text_to_piece(cut)
    assert [[n[:3] for n in t.notes] for t in piece.tracks] == [[(60, 0, BAR)], [(62, 0, 12)]]


# --- every NOTE_ON of tutorial-style text becomes a note ---------------------------------------
METERS = ["4_4", "3_4", "2_4", "6_8", "12_8", "5_4"]
DELTAS = st.one_of(
    st.sampled_from(["4.0", "2.0", "1.0", "0.5", "0.6666666666666666", "0.010416666666666519", "8.881784197001252e-16"]),
    st.floats(0, 20, allow_nan=False).map(repr),
)
EVENTS = st.one_of(
    st.integers(58, 62).map(lambda p: f"NOTE_ON={p}"),
    st.integers(58, 62).map(lambda p: f"NOTE_OFF={p}"),
    DELTAS.map(lambda d: f"TIME_DELTA={d}"),
)
BARS = st.lists(st.lists(EVENTS, max_size=25).map(" ".join), max_size=4)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(METERS), st.integers(30, 240), st.lists(BARS, min_size=1, max_size=3), st.sampled_from([4, 12, 24]))
def test_every_note_on_of_tutorial_text_becomes_a_note(meter, bpm, tracks, grid):
    words = ["PIECE_START", f"TIME_SIGNATURE={meter}", f"BPM={bpm}"]
    for i, bars in enumerate(tracks):
        words += ["TRACK_START", f"INST={i}", "DENSITY=0"]
        for bar in bars:
            words += ["BAR_START", bar, "BAR_END"]
        words.append("TRACK_END")
    text = " ".join([*words, "PIECE_END"])
    piece = text_to_piece(text, grid)
    bar_len = V.bar_steps(piece.time_signature, grid)
    assert piece.tempo == bpm
    for track, bars in zip(piece.tracks, tracks, strict=True):
        assert len(track.notes) == sum(bar.split().count(f"NOTE_ON={p}") for bar in bars for p in range(58, 63))
        for _, start, end, _ in track.notes:
            assert 0 <= start < end <= len(bars) * bar_len
    score = piece_to_score(piece, grid)
    back = Score.from_midi(score.dumps_midi())
    assert back.note_num() == sum(len(t.notes) for t in piece.tracks)
    assert all(n.duration > 0 for t in back.tracks for n in t.notes)
