"""Optional tier over ../shared/midi-dev (real files with quirks); skipped when the folder is absent."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import load_from_disk
from symusic import Score

from mmmgen.config import PrepareConfig
from mmmgen.data.prepare import prepare
from mmmgen.render.files import read_pieces
from mmmgen.text import vocab as V
from mmmgen.text.decode import piece_to_score, text_to_piece

SHARED = Path(__file__).resolve().parents[2] / "shared" / "midi-dev"
pytestmark = [pytest.mark.shared, pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/midi-dev not present")]


def test_prepare_real_files_skips_only_the_broken(tmp_path):
    report = prepare(SHARED, tmp_path / "ds", PrepareConfig(num_proc=2))
    assert report["files_skipped"] == {"unreadable MIDI": 2, "no notes": 1}
    ds = load_from_disk(str(tmp_path / "ds"))
    for text in ds["train"]["text"]:
        assert text_to_piece(text, strict=True).n_bars == 8
    meters = {t.split()[1] for t in ds["train"]["text"]}
    assert {"TIME_SIGNATURE=4_4", "TIME_SIGNATURE=2_4"} <= meters


@pytest.mark.parametrize("path", sorted(SHARED.glob("token_samples/*/*.txt")) if SHARED.is_dir() else [], ids=lambda p: p.parent.name + "/" + p.name)
def test_tutorial_token_text_decodes(path):
    pieces = read_pieces(path)
    assert pieces
    quirks = {"TIME_DELTA past the bar end", "NOTE_ON of a sounding pitch", "NOTE_OFF without NOTE_ON", "note of zero length"}
    notes = 0
    for text in pieces[:200]:
        piece = text_to_piece(text)
        # the tutorial's float time deltas overfill bars and overlap a pitch with itself; we count
        # those and keep going; its vocabulary and structure must read without any other problem
        assert set(piece.issues) <= quirks, piece.issues
        notes += sum(len(t.notes) for t in piece.tracks)
    assert notes > 0


@pytest.mark.parametrize("path", sorted(SHARED.glob("token_samples/*/*.txt")) if SHARED.is_dir() else [], ids=lambda p: p.parent.name + "/" + p.name)
def test_tutorial_token_text_loses_no_notes(path):
    """Every NOTE_ON of the tutorial's text becomes a note that still sounds in the rendered MIDI."""
    for i, text in enumerate(read_pieces(path)):
        piece = text_to_piece(text)
        n_on = sum(w.startswith(V.NOTE_ON + "=") for w in text.split())
        assert sum(len(t.notes) for t in piece.tracks) == n_on, f"piece {i} lost notes: {dict(piece.issues)}"
        score = piece_to_score(piece)
        back = Score.from_midi(score.dumps_midi())
        assert back.note_num() == n_on and all(n.duration > 0 for t in back.tracks for n in t.notes)
        if "BPM=" in text:
            assert round(back.tempos[0].qpm) == round(piece.tempo)
