"""``mmmgen extend`` and long pieces from the command line, over the trained debug run."""

from __future__ import annotations

import logging

from synth import random_score, write

from mmmgen.cli import main
from mmmgen.data.prepare import load_score
from mmmgen.generate.prompt import prompt_song
from mmmgen.model.run import generator_from_run
from mmmgen.text.decode import text_to_piece
from mmmgen.text.encode import quantize_notes
from mmmgen.text.fill import split_words
from mmmgen.text.vocab import bar_steps


def test_extend_of_a_midi_file_keeps_its_notes(debug_run, tmp_path, capsys):
    midi = write(random_score(4, n_bars=12, meter=(3, 4)), tmp_path / "mine.mid")
    score = load_score(midi)  # the notes as the file holds them
    out = tmp_path / "out"
    args = ["extend", str(midi), "--model", str(debug_run), "--bars", "5", "--out", str(out), "--format", "txt,mid", "--seed", "2"]
    n = prompt_song(midi, generator_from_run(debug_run)[1]).n_bars  # every bar: 12, or 13 with a note past bar 12
    assert n >= 12
    assert main(args) == 0
    assert f"{n} + 5 = {n + 5} bars" in capsys.readouterr().out
    piece = text_to_piece((out / "piece.txt").read_text(), strict=True)
    assert piece.time_signature == (3, 4) and all(t.n_bars == n + 5 and t.notes for t in piece.tracks)
    end = n * bar_steps((3, 4), 12)
    for source, track in zip(score.tracks, piece.tracks, strict=True):
        assert track.is_drum == source.is_drum and (track.is_drum or track.program == source.program)
        want = {(p, s, e) for p, s, e, _ in quantize_notes(source.notes.numpy(), score.tpq, 12).tolist()}
        got = {(p, s, e) for p, s, e, _ in track.notes if s < end}
        assert {n for n in got if n[2] < end} == {n for n in want if n[2] < end}  # every note, as quantized
        assert {n[:2] for n in got} == {n[:2] for n in want}  # a note sounding at the end may go on
    assert (out / "piece.mid").stat().st_size > 0


def test_extend_of_text_keeps_every_bar(debug_run, tmp_path):
    first = tmp_path / "first"
    assert main(["generate", "--model", str(debug_run), "--out", str(first), "--tracks", "2", "--bars", "3", "--format", "txt", "--seed", "1"]) == 0
    out = tmp_path / "out"
    assert main(["extend", str(first / "piece.txt"), "--model", str(debug_run), "--out", str(out), "--format", "txt"]) == 0
    before, after = split_words((first / "piece.txt").read_text()), split_words((out / "piece.txt").read_text())
    assert [t.bars for t in before.tracks] == [t.bars[:3] for t in after.tracks]
    assert all(len(t.bars) == 3 + 8 for t in after.tracks)  # default: one trained window more
    assert main(["extend", str(first / "piece.txt"), "--model", str(debug_run), "--bars", "0"]) == 2


def test_generate_longer_than_the_window_and_prompts_keep_all_bars(debug_run, tmp_path, caplog):
    out = tmp_path / "long"
    assert main(["generate", "--model", str(debug_run), "--out", str(out), "--tracks", "2", "--bars", "19", "--format", "txt", "--seed", "4"]) == 0
    piece = text_to_piece((out / "piece.txt").read_text(), strict=True)
    assert [t.n_bars for t in piece.tracks] == [19, 19]
    midi = write(random_score(6, n_bars=20), tmp_path / "prompt.mid")
    settings = generator_from_run(debug_run)[1]
    assert prompt_song(midi, settings).n_bars >= 20  # every bar (a last note may reach into bar 21)
    with caplog.at_level(logging.WARNING):
        cut = prompt_song(midi, settings, max_bars=10)
    assert cut.n_bars == 10 and "kept the first 10" in caplog.text
