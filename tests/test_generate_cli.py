"""``mmmgen generate`` over a trained debug run: files, instruments, prompts, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from synth import random_score, write

from mmmgen.cli import main
from mmmgen.generate.prompt import prompt_song
from mmmgen.generate.sampling import Sampling
from mmmgen.generate.song import generate_song
from mmmgen.model.run import generator_from_run
from mmmgen.text.decode import text_to_piece


def test_generate_writes_every_format(debug_run, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["generate", "--model", str(debug_run), "--out", str(out), "--tracks", "2", "--seed", "1"]
    assert main([*args, "--instrument", "Violin", "--format", "mid,txt,png,wav"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["piece.mid", "piece.png", "piece.txt", "piece.wav"]
    piece = text_to_piece((out / "piece.txt").read_text(), strict=True)
    assert len(piece.tracks) == 2 and piece.tracks[0].program == 40
    assert all(t.notes and t.n_bars == piece.n_bars for t in piece.tracks)
    assert "2 tracks" in capsys.readouterr().out


def test_same_seed_same_piece(debug_run):
    generator, _settings = generator_from_run(debug_run)
    a = generate_song(generator, tracks=2, n_bars=2, sampling=Sampling(seed=5))
    b = generate_song(generator, tracks=2, n_bars=2, sampling=Sampling(seed=5))
    assert a == b and len(a.tracks) == 2 and a.genre in [*generator.genres, "OTHER"]


def test_prompt_tracks_come_first(debug_run, tmp_path):
    prompt = write(random_score(2, n_bars=8), tmp_path / "prompt.mid")
    out = tmp_path / "out"
    assert main(["generate", "--model", str(debug_run), "--out", str(out), "--tracks", "1", "--prompt", str(prompt), "--format", "txt", "--seed", "3"]) == 0
    first = text_to_piece((out / "piece.txt").read_text(), strict=True)
    expected = len(prompt_song(prompt, generator_from_run(debug_run)[1]).tracks)
    assert len(first.tracks) == expected + 1


def test_bad_instrument_and_missing_model_are_one_line_errors(debug_run, tmp_path, capsys):
    assert main(["generate", "--model", str(debug_run), "--out", str(tmp_path), "--instrument", "Kazooo"]) == 2
    assert "Kazooo" in capsys.readouterr().err
    assert main(["generate", "--model", str(tmp_path / "nothing"), "--out", str(tmp_path)]) == 2


def test_infill_rewrites_only_the_chosen_bars(debug_run, tmp_path):
    from mmmgen.text.fill import split_words

    first = tmp_path / "first"
    assert main(["generate", "--model", str(debug_run), "--out", str(first), "--tracks", "2", "--bars", "4", "--format", "txt", "--seed", "2"]) == 0
    out = tmp_path / "infilled"
    args = ["infill", "--model", str(debug_run), "--input", str(first / "piece.txt"), "--track", "2", "--bars", "2-3"]
    assert main([*args, "--out", str(out), "--format", "txt,mid", "--seed", "7"]) == 0
    before = split_words((first / "piece.txt").read_text())
    after = split_words((out / "piece.txt").read_text())
    assert before.tracks[0].bars == after.tracks[0].bars
    assert before.tracks[1].bars[0] == after.tracks[1].bars[0] and before.tracks[1].bars[3] == after.tracks[1].bars[3]
    assert text_to_piece((out / "piece.txt").read_text(), strict=True).tracks[1].n_bars == 4
    assert main([*args[:-2], "--bars", "3-1", "--out", str(out)]) == 2  # A <= B


def test_find_run_prefers_the_shipped_model_and_latest_picks_the_newest_local_run(debug_run, tmp_path, monkeypatch):
    from mmmgen.model import run as G

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    shutil.copytree(debug_run, tmp_path / "runs" / "mine", ignore=shutil.ignore_patterns("checkpoint-*"))
    assert G.find_run("latest").resolve() == (tmp_path / "runs" / "mine").resolve()
    assert G.find_run(str(debug_run)) == Path(str(debug_run))
    monkeypatch.setattr(G, "default_model_dir", lambda: Path("/shipped"))
    assert G.find_run(None) == Path("/shipped")
    monkeypatch.setattr(G, "default_model_dir", lambda: None)  # a checkout without the shipped model
    assert G.find_run(None).resolve() == (tmp_path / "runs" / "mine").resolve()
    shutil.rmtree(tmp_path / "runs")
    with pytest.raises(G.GenerationError, match="no trained model found"):
        G.find_run(None)


def test_control_flags_are_obeyed_and_impossible_ones_are_one_line_errors(debug_run, tmp_path, capsys):
    from mmmgen.generate.controls import Controls, violations

    out = tmp_path / "out"
    flags = ["--scale", "G:mixolydian", "--pitch-range", "50-74", "--max-polyphony", "2", "--min-note", "0.25", "--max-note", "2"]
    args = ["generate", "--model", str(debug_run), "--out", str(out), "--tracks", "2", "--bars", "2", "--seed", "4", "--format", "txt"]
    assert main([*args, "--instrument", "0", "Violin", *flags]) == 0
    controls = Controls("G:mixolydian", (50, 74), 2, 0.25, 2)
    for track in text_to_piece((out / "piece.txt").read_text(), strict=True).tracks:
        assert violations([(p, a, e) for p, a, e, _ in track.notes], controls, 12) == []
    filled = tmp_path / "filled"
    assert main(["infill", "--model", str(debug_run), "--input", str(out / "piece.txt"), "--bars", "2", "--out", str(filled), "--format", "txt", "--seed", "5", *flags]) == 0
    assert main([*args, "--scale", "C:major", "--pitch-range", "61-61"]) == 2
    assert "no pitch in common" in capsys.readouterr().err
    assert main([*args, "--scale", "X:weird"]) == 2
