"""``prepare``: a MIDI folder becomes a dataset; bad files are counted, never fatal."""

from __future__ import annotations

import collections
import csv
import json
import subprocess
import sys

import pytest
from datasets import load_from_disk
from synth import make_score, random_score, write

from mmmgen.config import PrepareConfig
from mmmgen.data.prepare import DatasetError, density_edges, prepare, split_files
from mmmgen.text import vocab as V
from mmmgen.text.decode import text_to_piece
from mmmgen.text.encode import density_level


@pytest.fixture(scope="module")
def midi_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("midi")
    for i in range(10):
        write(random_score(i, n_bars=20), root / ("Rock" if i % 2 else "Hip Hop") / f"song{i}.MID")
    write(make_score([(0, False, [(60, 0, 1)])]), root / "tiny.midi")
    (root / "empty.mid").write_bytes(b"")
    (root / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    (root / "notes.txt").write_text("not midi")
    with open(root / "genres.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "genre"])
        for i in range(10):
            w.writerow([f"{'Rock' if i % 2 else 'Hip Hop'}/song{i}.MID", "Rock" if i % 2 else "Hip Hop"])
    return root


@pytest.fixture(scope="module")
def prepared(midi_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "dataset"
    config = PrepareConfig(genres=str(midi_dir / "genres.csv"), test_size=0.2, num_proc=2, bars=4)
    report = prepare(midi_dir, out, config)
    return out, report


def test_report_counts_files_and_reasons(prepared):
    _, report = prepared
    assert report["files_total"] == 13  # .mid/.MID/.midi, any case; not notes.txt
    assert report["files_kept"] == 11
    assert report["files_skipped"] == {"empty file": 1, "unreadable MIDI": 1}
    assert report["codec"]["bars"] == 4 and len(report["density_edges"]) == 9
    assert report["tokens"]["train"] > 0 and report["windows"]["train"] > report["windows"]["test"] > 0


def test_dataset_columns_split_by_song_and_genres(prepared):
    out, _report = prepared
    ds = load_from_disk(str(out))
    assert set(ds) == {"train", "test"}
    assert {"text", "source", "start_bar", "genre"} <= set(ds["train"].column_names)
    assert not set(ds["train"]["source"]) & set(ds["test"]["source"])
    # the split is drawn by file before parsing: 20% of the 13 files found
    assert 1 <= len(set(ds["test"]["source"])) <= 3
    assert set(ds["train"]["genre"]) | set(ds["test"]["genre"]) == {"ROCK", "HIP_HOP", "OTHER"}
    for row in ds["train"].select(range(5)):
        assert f"GENRE={row['genre']}" in row["text"]
        piece = text_to_piece(row["text"], strict=True)
        assert piece.n_bars == 4
        assert all(t.density is not None and 0 <= t.density < 10 for t in piece.tracks)
    starts = sorted(r["start_bar"] for r in ds["train"] if r["source"] == ds["train"][0]["source"])
    assert starts[:3] == [0, 4, 8]  # the whole file, not only its first window


def test_same_seed_same_split_and_num_proc_does_not_matter(midi_dir, prepared, tmp_path):
    out, _ = prepared
    again = tmp_path / "again"
    prepare(midi_dir, again, PrepareConfig(genres=str(midi_dir / "genres.csv"), test_size=0.2, num_proc=1, bars=4))
    a, b = load_from_disk(str(out)), load_from_disk(str(again))
    for split in ("train", "test"):  # the same rows in the same order (file order), whatever --num-proc
        assert a[split].to_list() == b[split].to_list()
    assert len(list((out / "train").glob("data-*.arrow"))) == 2  # one shard per worker, as save_to_disk(num_proc=2)


def test_test_size_zero_keeps_everything_in_train(midi_dir, tmp_path):
    report = prepare(midi_dir, tmp_path / "d", PrepareConfig(test_size=0, num_proc=1, max_files=4))
    assert report["windows"]["test"] == 0
    ds = load_from_disk(str(tmp_path / "d"))
    assert len(ds["test"]) == 0 and len(ds["train"]) == report["windows"]["train"]


def test_transpose_augments_train_only_and_never_drums(tmp_path):
    root = tmp_path / "m"
    for i in range(3):
        write(make_score([(0, False, [(60, 0, 1), (127, 1, 1)]), (0, True, [(36, 0, 1)])]), root / f"{i}.mid")
    report = prepare(root, tmp_path / "d", PrepareConfig(transpose=1, test_size=0.34, num_proc=1))
    ds = load_from_disk(str(tmp_path / "d"))
    assert len(ds["test"]) == 1 and sorted(set(ds["train"]["transpose"])) == [-1, 0, 1]
    up = next(r["text"] for r in ds["train"] if r["transpose"] == 1)
    assert V.note_on(61) in up and V.note_on(128 - 1) not in up.replace(V.note_on(127), "")  # 127+1 dropped
    assert V.note_on(36) in up  # the drum track is not transposed
    assert report["windows"]["train"] == 6


def test_density_edges_are_quantiles_of_the_training_set():
    edges = density_edges(__import__("numpy").arange(100), 10)
    assert len(edges) == 9 and edges == sorted(edges)
    assert [density_level(n, edges) for n in (0, 50, 99)] == [0, 5, 9]


def test_split_is_stable_and_by_file():
    sources = [f"s{i}" for i in range(50)]
    assert split_files(sources, 0.1, 1) == split_files(list(reversed(sources)), 0.1, 1)
    assert len(split_files(sources, 0.1, 1)) == 5 and split_files(sources, 0.1, 1) != split_files(sources, 0.1, 2)


def test_missing_or_empty_folder_is_a_named_error(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        prepare(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no MIDI files"):
        prepare(tmp_path / "empty", tmp_path / "out")


def test_report_json_is_written(prepared):
    out, report = prepared
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))


def test_infill_prob_adds_bar_fill_variants_beside_the_windows(midi_dir, tmp_path):
    from mmmgen.text.fill import resolve_fills

    report = prepare(midi_dir, tmp_path / "d", PrepareConfig(infill_prob=0.5, num_proc=1, max_files=4, test_size=0, bars=4))
    ds = load_from_disk(str(tmp_path / "d"))["train"]
    plain = [r for r in ds if not r["infill"]]
    filled = [r for r in ds if r["infill"]]
    assert 0 < len(filled) < len(plain) and report["infill_windows"]["train"] == len(filled)
    texts = {r["text"] for r in plain}
    for r in filled:
        assert V.FILL_IN in r["text"] and V.FILL_IN not in resolve_fills(r["text"])
        assert resolve_fills(r["text"]) in texts  # the variant of an unchanged plain window


def test_written_layout_is_what_datasets_saves(midi_dir, prepared, tmp_path, monkeypatch):
    """The folder is written with pyarrow, not ``datasets``: it must load with the same types and
    rows, in any number of shards, and a split of many shards reads back in order."""
    from datasets import Dataset, Features, Value

    from mmmgen.data import write as W

    out, report = prepared
    ds = load_from_disk(str(out))
    assert ds["train"].features == Features({name: Value(dtype) for name, dtype in W.FEATURES.items()})
    assert {split: len(d) for split, d in ds.items()} == report["windows"]
    assert {split: sum(d["n_words"]) for split, d in ds.items()} == report["tokens"]
    assert dict(collections.Counter(ds["train"]["genre"])) == report["genres"]
    assert all(r["n_words"] == len(r["text"].split()) for r in ds["train"])
    # the same rows through datasets' own writer, and through many small shards of ours
    reference = Dataset.from_list(ds["train"].to_list(), features=ds["train"].features)
    monkeypatch.setattr(W, "BATCH_ROWS", 3)
    monkeypatch.setattr(W, "SHARD_BYTES", 2000)
    sharded = tmp_path / "sharded"
    prepare(midi_dir, sharded, PrepareConfig(genres=str(midi_dir / "genres.csv"), test_size=0.2, num_proc=1, bars=4))
    again = load_from_disk(str(sharded))
    assert len(list((sharded / "train").glob("data-*-of-*.arrow"))) > 1
    assert sorted(again["train"]["text"]) == sorted(reference["text"])
    assert again["train"].features == reference.features


def test_prepare_command_imports_no_heavy_libraries(midi_dir, tmp_path):
    """Start-up is part of what a user waits for: prepare needs neither transformers nor datasets."""
    code = (
        "import sys; from mmmgen.cli import main; "
        f"main(['prepare', {str(midi_dir)!r}, {str(tmp_path / 'd')!r}, '--num-proc', '1']); "
        "print(sorted(m for m in ('transformers', 'datasets', 'pandas', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert load_from_disk(str(tmp_path / "d"))["train"].num_rows > 0


def test_a_file_that_breaks_the_batch_encoder_is_skipped_alone(tmp_path, monkeypatch):
    """Files are encoded in batches; an encoding error is traced to its file, the others are kept."""
    from mmmgen.data.prepare import encode_files
    from mmmgen.text import batch

    paths = [write(random_score(i, n_bars=9, tpq=[480, 123][i == 2]), tmp_path / f"{i}.mid") for i in range(5)]
    real = batch.scores_to_parts

    def fragile(scores, config, shifts):
        if any(s.tpq == 123 for s in scores):
            raise ValueError("boom")
        return real(scores, config, shifts)

    monkeypatch.setattr(batch, "scores_to_parts", fragile)
    results = encode_files(paths, [p.name for p in paths], PrepareConfig().codec(), [(0,)] * 5)
    assert [r.skipped for r in results] == [None, None, "encoding error (ValueError)", None, None]
    assert all(r.windows for i, r in enumerate(results) if i != 2)


def test_kit_subsets_add_training_copies_and_leave_the_test_split(prepared, midi_dir, tmp_path):
    out, report = prepared
    config = PrepareConfig(genres=str(midi_dir / "genres.csv"), test_size=0.2, num_proc=2, bars=4, kit_subsets=1.0)
    kits = prepare(midi_dir, tmp_path / "kits", config)
    added = kits["kit_subset_windows"]
    assert added > 0 and report["kit_subset_windows"] == 0
    assert kits["windows"]["train"] == report["windows"]["train"] + added
    before, after = load_from_disk(str(out)), load_from_disk(str(tmp_path / "kits"))
    assert after["test"]["text"] == before["test"]["text"]
    assert set(before["train"]["text"]) < set(after["train"]["text"])


def test_octave_copies_add_training_copies_and_leave_the_test_split(prepared, midi_dir, tmp_path):
    out, report = prepared
    config = PrepareConfig(genres=str(midi_dir / "genres.csv"), test_size=0.2, num_proc=2, bars=4, octave_copies=1.0)
    moved = prepare(midi_dir, tmp_path / "octaves", config)
    assert moved["octave_copy_windows"] > 0 and report["octave_copy_windows"] == 0
    assert moved["windows"]["train"] == report["windows"]["train"] + moved["octave_copy_windows"]
    assert load_from_disk(str(tmp_path / "octaves"))["test"]["text"] == load_from_disk(str(out))["test"]["text"]
