"""``mmmgen generate/infill --takes N [--rank]`` over a trained debug run: one folder per take and takes.csv."""

from __future__ import annotations

import csv

from mmmgen.cli import main
from mmmgen.generate.sampling import Sampling
from mmmgen.generate.song import generate_song
from mmmgen.model.run import generator_from_run
from mmmgen.text.decode import text_to_piece


def read_csv(path):
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_generate_takes_writes_a_folder_per_take_and_takes_csv(debug_run, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["generate", "--model", str(debug_run), "--out", str(out), "--tracks", "2", "--bars", "2", "--seed", "10"]
    assert main([*args, "--format", "txt,mid", "--takes", "3"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["take-1", "take-2", "take-3", "takes.csv"]
    rows = read_csv(out / "takes.csv")
    assert [(r["take"], r["seed"]) for r in rows] == [("1", "10"), ("2", "11"), ("3", "12")]
    generator, _ = generator_from_run(debug_run)
    for row in rows:
        folder = out / f"take-{row['take']}"
        assert sorted(p.name for p in folder.iterdir()) == ["piece.mid", "piece.txt"]
        text = (folder / "piece.txt").read_text()
        piece = text_to_piece(text, strict=True)
        assert len(piece.tracks) == 2 and all(t.n_bars == 2 and t.notes for t in piece.tracks)
        alone = generate_song(generator, 2, n_bars=2, sampling=Sampling(seed=int(row["seed"])))
        assert text.strip() == alone.text
        assert float(row["log_likelihood_per_note"]) < 0
    assert "take 3: seed 12" in capsys.readouterr().out


def test_rank_numbers_the_folders_best_first(debug_run, tmp_path):
    plain, ranked = tmp_path / "plain", tmp_path / "ranked"
    args = ["generate", "--model", str(debug_run), "--tracks", "1", "--bars", "2", "--seed", "4", "--format", "txt", "--takes", "4"]
    assert main([*args, "--out", str(plain)]) == 0
    assert main([*args, "--out", str(ranked), "--rank"]) == 0
    unranked, rows = read_csv(plain / "takes.csv"), read_csv(ranked / "takes.csv")
    scores = [float(r["log_likelihood_per_note"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert sorted(r["seed"] for r in rows) == sorted(r["seed"] for r in unranked)
    by_seed = {r["seed"]: (plain / f"take-{r['take']}" / "piece.txt").read_text() for r in unranked}
    for r in rows:
        assert (ranked / f"take-{r['take']}" / "piece.txt").read_text() == by_seed[r["seed"]]


def test_infill_takes_and_rank_without_takes(debug_run, tmp_path, capsys):
    first = tmp_path / "first"
    assert main(["generate", "--model", str(debug_run), "--out", str(first), "--tracks", "2", "--bars", "4", "--format", "txt", "--seed", "2"]) == 0
    out = tmp_path / "filled"
    args = ["infill", "--model", str(debug_run), "--input", str(first / "piece.txt"), "--track", "1", "--bars", "2-3", "--format", "txt"]
    assert main([*args, "--out", str(out), "--takes", "2", "--seed", "5"]) == 0
    assert [r["seed"] for r in read_csv(out / "takes.csv")] == ["5", "6"]
    for k in (1, 2):
        assert len(text_to_piece((out / f"take-{k}" / "piece.txt").read_text(), strict=True).tracks) == 2
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "x"), "--rank"]) == 2
    assert "--rank needs --takes" in capsys.readouterr().err
