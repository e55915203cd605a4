"""Optional tier over ../shared/corpora (the open collections); skipped when the folder is absent."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mmmgen.data import corpus
from mmmgen.data import open_corpora as oc

SHARED = Path(__file__).resolve().parents[3] / "shared" / "corpora"
pytestmark = [pytest.mark.shared, pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/corpora not present")]


@pytest.mark.parametrize("name", [n for n, c in oc.OPEN.items() if c.sha256])
def test_local_copy_has_the_pinned_checksum(name):
    root, digest = oc.locate(name, SHARED, "unused", strict=True)
    assert digest == oc.OPEN[name].sha256 and root == SHARED / oc.OPEN[name].folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("open")
    report = corpus.export_corpus(out, ["groove", "beatles", "openewld", "nottingham"], num_proc=1, progress=False,
                                  limit=4, from_dir=SHARED)
    return out, report


def test_export_of_every_open_collection(exported):
    from symusic import Score

    out, report = exported
    assert report.files == 16 - len(report.failed) and len(report.failed) <= 1
    with (out / corpus.GENRES).open(newline="") as f:
        rows = list(csv.DictReader(f))
    genres = {r["path"].split("/")[0]: r["genre"] for r in rows}
    assert genres == {"GROOVE": "DRUMS", "LMD-BEATLES": "ROCK", "OPENEWLD": "STANDARDS", "NOTTINGHAM": "FOLK"}
    for row in rows:
        score = Score(str(out / row["path"]))
        tracks = [t for t in score.tracks if len(t.notes)]
        if row["genre"] == "DRUMS":
            assert all(t.is_drum for t in tracks)
        if row["genre"] == "STANDARDS":  # a lead sheet: melody over its chord symbols
            assert [(t.name, t.program) for t in tracks][:2] == [("melody", 73), ("chords", 0)]
            assert max(len({n.time for n in t.notes}) for t in tracks[1:]) > 1
        if row["genre"] == "ROCK":
            assert row["song"] and row["path"].startswith(row["song"])


def test_prepare_reads_the_export(exported, tmp_path):
    from mmmgen.config import PrepareConfig
    from mmmgen.data.prepare import prepare

    out, _ = exported
    report = prepare(out, tmp_path / "ds", PrepareConfig(genres=str(out / corpus.GENRES), num_proc=1, transpose=1))
    assert report["files_kept"] >= 12 and {"DRUMS", "ROCK", "STANDARDS", "FOLK"} <= set(report["genres"])
