"""Chords made audible (render/chords.py) and drawn above the piano roll (render/pianoroll.py)."""

from __future__ import annotations

from mmmgen.render.chords import block_chords, voicing, with_block_chords
from mmmgen.render.pianoroll import plot_pianoroll
from mmmgen.text.chords import parse_chord, parse_progression
from mmmgen.text.decode import text_to_score
from mmmgen.text.harmony import read_chords


def test_block_chords_voice_the_bass_then_the_tones():
    assert voicing(parse_chord("C/E")) == [40, 55, 60, 64]  # E2 under G3 C4 E4
    assert voicing(parse_chord("Am")) == [45, 57, 60, 64]
    assert voicing(parse_chord("N")) == []
    spans = parse_progression("Am F N G7", 4)
    track = block_chords(spans, 480)
    assert len(track.notes) == 4 + 4 + 0 + 5 and track.notes[-1].end == 16 * 480
    from symusic import Score

    score = with_block_chords(Score(480), spans)
    assert [s.chord.label for s in read_chords(score) if not s.chord.is_none] == ["A:min", "F:maj", "G:7"]


def test_the_piano_roll_writes_the_chords_of_a_piece(tmp_path, monkeypatch):
    from mmmgen.render import pianoroll
    from mmmgen.text import vocab as V
    from mmmgen.text.chord_track import chord_track_text

    notes = " ".join([V.TRACK_START, V.inst(0), V.density(1), *[f"{V.BAR_START} {V.note_on(60)} {V.time_delta(12, 12)} {V.note_off(60)} {V.BAR_END}"] * 2, V.TRACK_END])
    text = f"{V.PIECE_START} {V.time_signature(4, 4)} {chord_track_text(parse_progression('Am F', 4), 2, 48, 12)} {notes}"
    drawn = []
    real = pianoroll._draw_chords
    monkeypatch.setattr(pianoroll, "_draw_chords", lambda *a: drawn.append(real(*a)) or drawn[-1])
    plot_pianoroll(text_to_score(text), tmp_path / "with.png")
    plot_pianoroll(text_to_score(text.replace(chord_track_text(parse_progression("Am F", 4), 2, 48, 12) + " ", "")), tmp_path / "without.png")
    assert drawn == [True, False] and (tmp_path / "with.png").stat().st_size > 1000
