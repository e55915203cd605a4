"""Held-out bits per note per collection (scripts/eval_collections.py), and shipped models by name."""

from __future__ import annotations

import math

import pytest
from conftest import tiny_score
from synth import write

from mmmgen.model.collections_eval import (
    collection_texts,
    evaluate_collections,
    format_collections,
    heldout_sets,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A corpus folder of two collections (POP, ROCK) with versions of songs, and a MIDI folder."""
    root = tmp_path_factory.mktemp("corpus")
    rows = ["path,genre,song"]
    for i in range(12):
        for v in range(2):
            rel = f"ROCKS/album/song{i}.{v}.mid"
            write(tiny_score(i), root / rel)
            rows.append(f"{rel},ROCK,ROCKS/album/song{i}")
        write(tiny_score(100 + i), root / f"POPS/p{i}.mid")
        rows.append(f"POPS/p{i}.mid,POP,")
    (root / "genres.csv").write_text("\n".join(rows) + "\n")
    styles = tmp_path_factory.mktemp("styles")
    for i in range(2):
        write(tiny_score(200 + i), styles / "jigs" / f"j{i}.mid")
    return root, styles


def test_heldout_files_are_the_ones_prepare_holds_out(corpus, tmp_path):
    from datasets import load_from_disk

    from mmmgen.config import PrepareConfig
    from mmmgen.data.prepare import prepare

    root, styles = corpus
    sets = heldout_sets([root], [styles], test_size=0.25, seed=3)
    prepare(root, tmp_path / "ds", PrepareConfig(genres=str(root / "genres.csv"), test_size=0.25, seed=3, num_proc=1))
    held = {f"{name}/{p.relative_to(root / name).as_posix()}" for name in ("ROCKS", "POPS") for p, _ in sets.get(name, [])}
    assert held == set(load_from_disk(str(tmp_path / "ds"))["test"]["source"])
    for p, _ in sets["ROCKS"]:  # both versions of a held-out song
        other = p.with_name(p.name.replace(".0.", ".1.") if ".0." in p.name else p.name.replace(".1.", ".0."))
        assert other in [q for q, _ in sets["ROCKS"]]
    assert [g for _, g in sets["ROCKS"]] == ["ROCK"] * len(sets["ROCKS"])
    assert len(sets[f"{styles.name}/jigs"]) == 2


def test_each_model_reads_the_windows_with_its_own_genres(corpus, debug_run):
    from mmmgen.model.run import load_run

    root, _ = corpus
    settings = load_run(debug_run)[2]
    files = [(p, "ROCK") for p in sorted((root / "ROCKS").rglob("*.mid"))[:2]] + [(sorted((root / "POPS").glob("*.mid"))[0], "JAZZ")]
    texts, info = collection_texts(files, settings, max_windows=None)
    assert info == {"files": 3, "kept": 3, "skipped": 0, "windows_total": len(texts)}
    assert {t.split()[2] for t in texts} == {"GENRE=ROCK", "GENRE=OTHER"}  # JAZZ: unknown to the model
    few, _ = collection_texts(files, settings, max_windows=2)
    assert len(few) == 2 and few[0] == texts[0]


def test_evaluate_collections_table(corpus, debug_run):
    root, styles = corpus
    sets = heldout_sets([root], [styles], test_size=0.25, seed=3)
    results = evaluate_collections([str(debug_run), str(debug_run)], sets, max_windows=3)
    for entry in results["collections"].values():
        bits = [entry["models"][str(debug_run)]["bits_per_note"]]
        assert all(math.isfinite(b) and b > 0 for b in bits) and entry["models"][str(debug_run)]["windows"] <= 3
    table = format_collections(results).splitlines()
    assert len(table) == 2 + len(sets) and "+0.0 %" in table[2]


def test_shipped_models_by_name(tmp_path, monkeypatch):
    from mmmgen.data.prepare import is_shipped_name, shipped_model_path
    from mmmgen.model.run import find_run

    assert shipped_model_path("default").name == "default_model"
    assert shipped_model_path("default-v1").name == "default_model_v1"
    assert find_run("default-v1") == shipped_model_path("default-v1")
    assert is_shipped_name("default") and not is_shipped_name("runs/default") and not is_shipped_name("defaults!")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default-v1").mkdir()  # a folder of that name wins
    assert not is_shipped_name("default-v1")
