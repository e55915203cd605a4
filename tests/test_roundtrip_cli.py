"""A MIDI file in is a MIDI file out (tempo, meter, names, programs, kit through ``extend``, ``infill``,
``generate --prompt``), and the rough edges a new user met (issue 25), over the trained debug run."""

from __future__ import annotations

import csv
import sys

import pytest
from symusic import Score, Tempo
from synth import make_score, write

from mmmgen.cli import main
from mmmgen.text import vocab as V
from mmmgen.text.decode import text_to_piece
from mmmgen.text.fill import split_words


def named_midi(path, tempos=((0, 175.0), (6, 90.0))):
    """6 bars of 3/4: a named melody (program 24), bass (33) and drums on the TR-808 kit (25), with a tempo change."""
    melody = [(72 + q % 5, float(q), 1.0) for q in range(18)]
    bass = [(36 + q % 3, float(q), 2.0) for q in range(0, 18, 2)]
    drums = [(36 if q % 2 else 38, float(q), 0.25) for q in range(18)]
    score = make_score([(24, False, melody), (33, False, bass), (25, True, drums)], [(0, 3, 4)])
    for track, name in zip(score.tracks, ("Melody", "Bass", "Kit"), strict=True):
        track.name = name
    score.tempos.clear()
    for quarter, qpm in tempos:
        score.tempos.append(Tempo(quarter * score.tpq, qpm=qpm))
    return write(score, path)


def facts(path) -> tuple:
    """Tempo map (quarters, BPM), meter, and (name, program, is_drum) per track of a MIDI file."""
    score = Score(str(path))
    tempos = [(t.time / score.tpq, round(t.qpm, 2)) for t in score.tempos]
    meters = [(t.numerator, t.denominator) for t in score.time_signatures]
    return tempos, meters, [(t.name, t.program, t.is_drum) for t in score.tracks]


TRACKS = [("Melody", 24, False), ("Bass", 33, False), ("Kit", 25, True)]


def test_extend_keeps_the_files_tempo_map_meter_names_programs_and_kit(debug_run, tmp_path):
    midi = named_midi(tmp_path / "song.mid")
    out = tmp_path / "out"
    assert main(["extend", str(midi), "--model", str(debug_run), "--bars", "2", "--out", str(out), "--format", "mid,txt", "--seed", "1"]) == 0
    tempos, meters, tracks = facts(out / "piece.mid")
    assert tempos == [(0.0, 175.0), (6.0, 90.0)] and meters == [(3, 4)] and tracks == TRACKS
    assert text_to_piece((out / "piece.txt").read_text(), strict=True).n_bars == 8
    assert main(["extend", str(midi), "--model", str(debug_run), "--bars", "1", "--out", str(out), "--format", "mid", "--tempo", "100"]) == 0
    tempos, _, tracks = facts(out / "piece.mid")
    assert tempos == [(0.0, 100.0)] and tracks == TRACKS  # --tempo: one tempo for the whole piece


def test_infill_takes_the_piece_as_an_argument_and_keeps_the_files_facts(debug_run, tmp_path, capsys):
    midi = named_midi(tmp_path / "song.mid")
    out, old = tmp_path / "new", tmp_path / "old"
    common = ["--model", str(debug_run), "--track", "1", "--bars", "2-3", "--format", "mid,txt", "--seed", "3"]
    assert main(["infill", str(midi), *common, "--out", str(out)]) == 0
    assert main(["infill", "--input", str(midi), *common, "--out", str(old)]) == 0  # --input still works, the same piece
    assert (out / "piece.txt").read_text() == (old / "piece.txt").read_text()
    assert facts(out / "piece.mid") == ([(0.0, 175.0), (6.0, 90.0)], [(3, 4)], TRACKS)
    capsys.readouterr()
    assert main(["infill", str(midi), "--input", str(midi), *common]) == 2
    assert main(["infill", *common]) == 2
    assert "as the first argument or as --input" in capsys.readouterr().err


def test_generate_with_a_prompt_keeps_its_tracks_names_and_adds_one(debug_run, tmp_path):
    midi = named_midi(tmp_path / "song.mid")
    out = tmp_path / "out"
    assert main(["generate", "--prompt", str(midi), "--model", str(debug_run), "--tracks", "1", "--out", str(out),
                 "--format", "mid", "--seed", "2", "--instrument", "Violin"]) == 0
    tempos, _, tracks = facts(out / "piece.mid")
    assert tempos[0] == (0.0, 175.0) and tracks[:3] == TRACKS and tracks[3] == ("Track 4", 40, False)


def test_takes_csv_has_a_genre_column(debug_run, tmp_path):
    out = tmp_path / "takes"
    assert main(["generate", "--model", str(debug_run), "--tracks", "1", "--bars", "1", "--takes", "2", "--genre", "rock",
                 "--format", "txt", "--out", str(out), "--seed", "1"]) == 0
    rows = list(csv.DictReader((out / "takes.csv").open()))
    assert [r["genre"] for r in rows] == ["ROCK", "ROCK"]
    assert all(text_to_piece((out / f"take-{k}" / "piece.txt").read_text()).genre == "ROCK" for k in (1, 2))


def test_an_unknown_genre_is_an_error_that_lists_the_models(debug_run, tmp_path, capsys):
    assert main(["generate", "--model", str(debug_run), "--genre", "Pop", "--tracks", "1", "--bars", "1", "--format", "txt",
                 "--out", str(tmp_path)]) == 0  # spelled as the model's POP
    capsys.readouterr()
    assert main(["generate", "--model", str(debug_run), "--genre", "Jazz", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown genre 'Jazz'" in err and "POP" in err and "ROCK" in err


def test_generating_an_unknown_genre_is_a_named_error(generator):
    from mmmgen.generate.sampling import GenerationError, Sampling
    from mmmgen.generate.song import generate_song

    for make in (lambda: generator.start("Jazz", n_bars=1), lambda: generate_song(generator, 1, "jazz", n_bars=1),
                 lambda: generate_song(generator, 1, "Jazz", n_bars=1, takes=2)):
        with pytest.raises(GenerationError, match=r"unknown genre '[Jj]azz': this model knows (OTHER, )?POP, ROCK"):
            make()
    assert generator.start("Rock", n_bars=1, sampling=Sampling(seed=1)).genre == "ROCK"  # any spelling of a known genre


def test_model_paths_are_named_as_given_and_default_is_the_shipped_model(debug_run, tmp_path, capsys):
    from mmmgen.model.run import default_model_dir, find_run

    missing, not_a_run = tmp_path / "runs" / "missing", tmp_path / "runs" / "empty"
    not_a_run.mkdir(parents=True)
    for path, what in ((missing, "model not found"), (not_a_run, "not an mmmgen run folder (no mmmgen.json)")):
        for command in (["generate"], ["extend", "x.mid"], ["infill", "x.mid"]):
            assert main([*command, "--model", str(path), "--out", str(tmp_path)]) == 2
            err = capsys.readouterr().err.strip().splitlines()[-1]
            assert f"{what}: {path}" in err and f"{path.parent} " not in f"{err} "  # the folder as given, not its parent
    if default_model_dir() is None:
        pytest.skip("no shipped model in this checkout")
    assert find_run("default") == default_model_dir()
    from mmmgen.model.evaluate import _load_model

    assert _load_model("default")[0] == default_model_dir()  # evaluate --model default
    out = tmp_path / "shipped"
    assert main(["generate", "--model", "default", "--tracks", "1", "--bars", "1", "--format", "txt", "--out", str(out), "--seed", "1"]) == 0
    assert text_to_piece((out / "piece.txt").read_text(), strict=True).n_bars == 1


def test_progress_of_the_bars_written_shows_on_a_terminal_only(debug_run, tmp_path, monkeypatch, capsys):
    midi = named_midi(tmp_path / "song.mid")
    args = ["extend", str(midi), "--model", str(debug_run), "--bars", "2", "--format", "txt", "--seed", "1"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert "bar" not in capsys.readouterr().err.replace("bars", "")  # not a terminal: no progress bar
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert "6/6" in capsys.readouterr().err  # 2 new bars x 3 tracks


def test_progress_counts_every_bar_each_operation_writes(generator):
    from mmmgen.generate.sampling import Sampling, on_progress

    seen = []
    with on_progress(seen.append):
        song = generator.start("POP", n_bars=3, sampling=Sampling(seed=1))
        song = generator.add_track(song, sampling=Sampling(seed=2))
        assert sum(seen) == 6
        song = generator.extend(song, 2, Sampling(seed=3))
        assert sum(seen) == 6 + 4
        generator.infill(song, 0, [1, 3], Sampling(seed=4))
        assert sum(seen) == 10 + 2
        generator.infill(song, 1, [0], Sampling(seed=5), takes=2)
        assert sum(seen) == 12 + 2
    generator.extend(song, 1, Sampling(seed=6))
    assert sum(seen) == 14  # outside the block: nothing reported


def test_render_of_one_piece_writes_its_stem(debug_run, tmp_path):
    first = tmp_path / "first"
    assert main(["generate", "--model", str(debug_run), "--tracks", "1", "--bars", "2", "--format", "txt", "--out", str(first), "--seed", "1"]) == 0
    assert main(["render", str(first / "piece.txt"), "--out", str(tmp_path / "r"), "--format", "mid,txt"]) == 0
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["piece.mid", "piece.txt"]
    assert main(["render", str(first / "piece.txt"), "--out", str(first), "--format", "txt,mid"]) == 0  # never over its input
    assert split_words((first / "piece.txt").read_text()).tracks and (first / "piece.mid").is_file()


def test_prepare_that_keeps_no_window_fails_with_the_reasons(tmp_path, capsys):
    midi = tmp_path / "midi"
    midi.mkdir()
    (midi / "a.mid").write_bytes(b"MThd not really")
    (midi / "b.mid").write_bytes(b"")
    assert main(["prepare", str(midi), str(tmp_path / "ds"), "--num-proc", "1"]) == 2
    err = capsys.readouterr().err
    assert "no dataset written" in err and "unreadable MIDI: 1" in err and "empty file: 1" in err
    assert not (tmp_path / "ds").exists()


COMMANDS = ("corpus", "genres", "prepare", "tokenizer", "size", "train", "sweep", "generate", "infill", "extend", "render", "evaluate", "app", "space")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_each_flag_once_hyphenated_without_empty_defaults(command, capsys):
    assert main([command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # one line: wrapped help joined
    assert "(default: None)" not in text and "(default: False)" not in text and "(default: [])" not in text
    flags = [w.strip("[],") for w in text.split() if w.startswith(("--", "[--"))]
    assert not [f for f in flags if "_" in f], "an underscored flag is shown"


def test_a_default_stated_in_the_help_is_not_repeated():
    from transformers import HfArgumentParser

    from mmmgen import config
    from mmmgen.cli import tidy_help

    types = [config.PrepareConfig, config.TrainConfig, config.EvaluateConfig, config.GenerateConfig, config.InfillConfig,
             config.ExtendConfig, config.TakesConfig, config.ControlsConfig, config.AppConfig, config.SpaceConfig]
    actions = [(parser._get_formatter(), action) for t in types for parser in [tidy_help(HfArgumentParser([t]))] for action in parser._actions]
    stated = 0
    for formatter, action in actions:
        shown = formatter._get_help_string(action) or ""
        if "default" in (action.help or "").lower():
            stated += 1
            assert "(default:" not in shown.replace(action.help, ""), action.dest
        assert "(default: None)" not in shown
        invocation = formatter._format_action_invocation(action)
        assert "_" not in invocation.split(" ")[0] and invocation.count("--") <= 1, invocation
    assert stated > 10


def test_the_readme_python_example_uses_genres_the_shipped_model_knows():
    import json
    import re
    from pathlib import Path

    from mmmgen.model.run import default_model_dir

    if default_model_dir() is None:
        pytest.skip("no shipped model in this checkout")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    shipped = set(json.loads((default_model_dir() / "mmmgen.json").read_text())["genre_labels"])
    genres = {V.normalize_genre(g) for g in re.findall(r'genre="([^"]+)"', readme)}
    assert genres and genres <= shipped
