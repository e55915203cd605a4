"""``prepare --chords``: every window opens with the chord track (the file's own chord symbols, else
the chords read from its notes), transposed with the notes; densities and old datasets unchanged."""

from __future__ import annotations

import json

import pytest
from datasets import load_from_disk
from synth import make_score, write

from mmmgen.config import PrepareConfig
from mmmgen.data.prepare import prepare, score_chords
from mmmgen.text import vocab as V
from mmmgen.text.chord_track import marker_chords
from mmmgen.text.chords import parse_chord
from mmmgen.text.decode import text_to_piece

PROGRESSION = [(57, 60, 64), (53, 57, 60), (48, 52, 55), (55, 59, 62)]  # Am F C G as block chords, a bar each


def chord_song(n_bars: int = 8):
    notes = [(p, 4.0 * b, 4.0) for b in range(n_bars) for p in PROGRESSION[b % 4]]
    melody = [(12 + PROGRESSION[q // 4 % 4][q % 3], float(q), 1.0) for q in range(4 * n_bars)]  # arpeggios an octave up
    return make_score([(0, False, notes), (73, False, melody)])


def test_every_window_starts_with_the_chords_read_from_its_notes(tmp_path):
    for i in range(3):
        write(chord_song(), tmp_path / "midi" / f"{i}.mid")
    plain = prepare(tmp_path / "midi", tmp_path / "plain", PrepareConfig(test_size=0.34, num_proc=1, bars=4, transpose=1))
    report = prepare(tmp_path / "midi", tmp_path / "ds", PrepareConfig(test_size=0.34, num_proc=1, bars=4, transpose=1, chords=True))
    assert report["codec"]["chords"] is True and report["density_edges"] == plain["density_edges"]  # the chord track has no density
    rows = list(load_from_disk(str(tmp_path / "ds"))["train"])
    assert rows
    for row in rows:
        words = row["text"].split()
        assert words[3:6] == [V.TRACK_START, V.chord_track_inst(), V.density(0)]
        piece = text_to_piece(row["text"], strict=True)
        labels = [s.chord.label for s in piece.chords]
        shift = row["transpose"]
        expected = [parse_chord(c) for c in ("Am", "F", "C", "G")]
        expected = [V.chord_in_vocabulary(type(c)(c.root + shift, c.quality)) for c in expected]
        first = row["start_bar"] % 4
        assert labels == [expected[(first + k) % 4].label for k in range(4)]


def test_the_files_own_chord_symbols_win(tmp_path):
    from symusic import TextMeta

    score = chord_song(4)
    for b, label in enumerate(["D:min", "G:7", "C:maj7", "C:maj7"]):
        score.markers.append(TextMeta(b * 4 * score.ticks_per_quarter, label))
    assert [s.chord.label for s in score_chords(score)] == ["D:min", "G:7", "C:maj7", "C:maj7"]
    score.markers.append(TextMeta(0, "Verse"))  # markers that are not all chords are no chord symbols
    assert marker_chords(score) == [] and score_chords(score)[0].chord.label == "A:min"


def test_the_tokenizer_of_a_chord_dataset_has_the_chord_words(tmp_path):
    from mmmgen.model.tokenizer import train_tokenizer

    for i in range(2):
        write(chord_song(), tmp_path / "midi" / f"{i}.mid")
    prepare(tmp_path / "midi", tmp_path / "ds", PrepareConfig(test_size=0.0, num_proc=1, bars=4, chords=True))
    tok = train_tokenizer(tmp_path / "ds", tmp_path / "tok")
    vocab = tok.get_vocab()
    assert all(w in vocab for w in V.chord_words()) and V.chord_track_inst() in vocab
    assert json.loads((tmp_path / "tok" / "tokenizer_report.json").read_text())["extra_words"] == []


def test_chords_share_gives_the_chord_track_to_a_fixed_share_of_files(tmp_path):
    from mmmgen.data.prepare import takes_chords

    names = [f"{i}.mid" for i in range(12)]
    for name in names:
        write(chord_song(4), tmp_path / "midi" / name)
    prepare(tmp_path / "midi", tmp_path / "ds", PrepareConfig(test_size=0.0, num_proc=1, bars=4, chords=True, chords_share=0.5))
    rows = list(load_from_disk(str(tmp_path / "ds"))["train"])
    with_track = {row["source"] for row in rows if V.chord_track_inst() in row["text"].split()}
    assert with_track == {n for n in names if takes_chords(n, 0.5)}  # the draw by name decides, nothing else
    assert 0 < len(with_track) < len(names)  # both kinds of window are there
    assert all(takes_chords(n, 1.0) for n in names) and not any(takes_chords(n, 0.0) for n in names)
    with pytest.raises(ValueError, match="chords-share"):
        PrepareConfig(chords_share=1.5)
