"""The open collections: names, checksums, the download path (a local archive, no network), the
local-copy export, lead sheets, and the song split."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from synth import make_score, write

from mmmgen.data import corpus
from mmmgen.data import open_corpora as oc
from mmmgen.data.prepare import split_files


def drums(seed: int):
    return make_score([(0, True, [(36 + (q + seed) % 3, q / 2, 0.1) for q in range(64)])])


def band(seed: int):
    return make_score([(33, False, [(40 + seed % 5, q, 1.0) for q in range(32)]),
                       (0, True, [(36, q / 2, 0.1) for q in range(64)])])


def tar_of(folder: Path, top: str, out: Path) -> Path:
    """A GitHub-like archive: ``top/...`` holding the files of ``folder``."""
    with tarfile.open(out, "w:gz") as t:
        t.add(folder, arcname=top)
    return out


def test_names_aliases_and_groups():
    assert oc.resolve("groove") == oc.resolve("DRUMS") == "GROOVE"
    assert oc.resolve("Beatles") == oc.resolve("lmd_beatles") == "LMD-BEATLES"
    assert oc.resolve("bach") is None
    assert corpus.select_collections(["open"]) == ["GROOVE", "LMD-BEATLES", "OPENEWLD"]
    assert "NOTTINGHAM" not in corpus.select_collections(["all", "open"])  # GPL-3.0: only by name
    assert corpus.select_collections("all,nottingham".split(","))[-1] == "NOTTINGHAM"
    assert corpus.select_collections(None) == list(corpus.COLLECTIONS)
    with pytest.raises(corpus.UnknownCollectionError, match="GROOVY"):
        corpus.select_collections(["groovy"])
    assert [c.name for c in oc.OPEN.values() if not c.trainable] == ["NOTTINGHAM"]
    for c in oc.OPEN.values():
        assert c.commit and len(c.commit) == 40 and c.repo in c.url and c.commit in c.url


def test_tree_digest_sees_bytes_and_names_not_order(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write(drums(1), a / "x" / "one.mid")
    write(drums(2), a / "two.mid")
    write(drums(2), b / "two.mid")
    write(drums(1), b / "x" / "one.mid")
    (a / "notes.txt").write_text("not music: not in the digest")
    assert oc.tree_digest(a) == oc.tree_digest(b)
    (b / "two.mid").write_bytes((b / "two.mid").read_bytes() + b"\0")
    assert oc.tree_digest(a) != oc.tree_digest(b)
    (b / "x" / "one.mid").rename(b / "x" / "uno.mid")
    write(drums(2), b / "two.mid")
    assert oc.tree_digest(a) != oc.tree_digest(b)


@pytest.fixture
def groove_archive(tmp_path):
    """A local copy (normalised layout) and a GitHub-like archive of it, and a spec pinned to it."""
    local = tmp_path / "src" / "groove"
    for i in range(3):
        write(drums(i), local / "drummer1" / f"{i}_rock_120_beat_4-4.mid")
    (local / "info.csv").write_text("id,split\n")
    archive = tar_of(local.parent, "drums-with-llm-abc", tmp_path / "a.tar.gz")
    spec = dataclasses.replace(oc.OPEN["GROOVE"], subdir="groove", sha256=oc.tree_digest(local))
    return local, archive, spec


def test_download_verifies_the_pinned_checksum(groove_archive, tmp_path):
    local, archive, spec = groove_archive
    got = oc.download(spec, tmp_path / "cache", url=archive.as_uri())
    assert got == tmp_path / "cache" / "groove" and oc.tree_digest(got) == spec.sha256
    assert (got / "info.csv").is_file()
    archive.unlink()  # a verified copy in the cache is reused: no second download
    assert oc.download(spec, tmp_path / "cache", url=archive.as_uri()) == got
    bad = dataclasses.replace(spec, sha256="0" * 64)
    tar_of(local.parent, "top", archive)
    with pytest.raises(oc.ChecksumError, match="checksum mismatch"):
        oc.download(bad, tmp_path / "cache2", url=archive.as_uri())
    assert not (tmp_path / "cache2" / "groove").exists()  # nothing unverified is kept


def test_download_refuses_unpinned_and_reports_no_network(groove_archive, tmp_path):
    _, archive, spec = groove_archive
    unpinned = dataclasses.replace(spec, sha256=None)
    with pytest.raises(oc.ChecksumError, match="no pinned checksum"):
        oc.download(unpinned, tmp_path / "c", url=archive.as_uri())
    assert oc.download(unpinned, tmp_path / "c", url=archive.as_uri(), allow_unpinned=True).is_dir()
    with pytest.raises(oc.DownloadError, match="cannot download"):
        oc.download(spec, tmp_path / "d", url=(tmp_path / "missing.tar.gz").as_uri())
    (tmp_path / "junk.zip").write_bytes(b"not an archive")
    with pytest.raises(oc.DownloadError, match="not a readable archive"):
        oc.download(spec, tmp_path / "e", url=(tmp_path / "junk.zip").as_uri())


def test_download_over_http(groove_archive, tmp_path):
    import functools
    import http.server
    import threading

    _, archive, spec = groove_archive
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(archive.parent))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{archive.name}"
        assert oc.tree_digest(oc.download(spec, tmp_path / "http", url=url)) == spec.sha256
    finally:
        server.shutdown()


def test_lakh_versions_are_renamed_from_a_zip(tmp_path):
    upstream = tmp_path / "up" / "data" / "mid" / "01_-_Album"
    write(band(0), upstream / "Song.mid0")
    write(band(1), upstream / "Song.mid1")
    expected = tmp_path / "expected" / "01_-_Album"
    write(band(0), expected / "Song.0.mid")
    write(band(1), expected / "Song.1.mid")
    zpath = tmp_path / "a.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for f in upstream.iterdir():
            z.write(f, f"repo-123/data/mid/01_-_Album/{f.name}")
    spec = dataclasses.replace(oc.OPEN["LMD-BEATLES"], sha256=oc.tree_digest(expected.parent))
    got = oc.download(spec, tmp_path / "cache", url=zpath.as_uri())
    assert sorted(p.name for p in (got / "01_-_Album").iterdir()) == ["Song.0.mid", "Song.1.mid"]


def test_nottingham_melody_and_chords_are_merged(tmp_path):
    from symusic import Score

    up = tmp_path / "repo" / "MIDI"
    write(make_score([(0, False, [(72, q, 1.0) for q in range(8)])]), up / "melody" / "jig1.mid")
    write(make_score([(0, False, [(p, 0, 4.0) for p in (48, 52, 55)])], tpq=96), up / "chords" / "jig1.mid")
    archive = tar_of(tmp_path / "repo", "nottingham-dataset-abc", tmp_path / "n.tar.gz")
    got = oc.download(oc.OPEN["NOTTINGHAM"], tmp_path / "cache", url=archive.as_uri(), allow_unpinned=True)
    score = Score(str(got / "midi" / "jig1.mid"))
    assert [(t.name, t.program, len(t.notes)) for t in score.tracks] == [("melody", 73, 8), ("chords", 0, 3)]
    assert score.tracks[1].notes[0].duration == 4 * score.ticks_per_quarter  # resampled to the melody's ticks


def test_export_from_a_local_copy(tmp_path):
    src = tmp_path / "corpora"
    for i in range(2):
        write(drums(i), src / "groove" / "drummer1" / f"{i}_funk_100_beat_4-4.mid")
    for v in range(3):
        write(band(v), src / "lmd-beatles" / "01_-_Album" / f"Song.{v}.mid")
    write(band(9), src / "lmd-beatles" / "01_-_Album" / "Other.0.mid")
    out = tmp_path / "out"
    report = corpus.export_corpus(out, ["drums", "beatles"], num_proc=1, progress=False, from_dir=src)
    assert report.per_collection["GROOVE"]["exported"] == 2 and report.per_collection["LMD-BEATLES"]["exported"] == 4
    with (out / corpus.GENRES).open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["path"].split("/")[0]: r["genre"] for r in rows} == {"GROOVE": "DRUMS", "LMD-BEATLES": "ROCK"}
    songs = {r["path"]: r["song"] for r in rows}
    assert songs["LMD-BEATLES/01_-_Album/Song.2.mid"] == "LMD-BEATLES/01_-_Album/Song"
    assert songs["GROOVE/drummer1/0_funk_100_beat_4-4.mid"] == songs["GROOVE/drummer1/1_funk_100_beat_4-4.mid"] == "GROOVE/drummer1/funk_100_beat_4-4"
    assert (out / "GROOVE/drummer1/0_funk_100_beat_4-4.mid").read_bytes() == (src / "groove/drummer1/0_funk_100_beat_4-4.mid").read_bytes()
    sources = json.loads((out / oc.SOURCES).read_text())
    assert sources["GROOVE"]["licence"] == "CC BY 4.0" and "Gillick" in sources["GROOVE"]["attribution"]
    card = oc.data_card(out, ["DRUMS", "BACH"])
    assert "GROOVE" in card and "LMD-BEATLES" not in card  # ROCK not trained on: not credited
    again = corpus.export_corpus(out, ["groove", "lmd-beatles"], num_proc=1, progress=False, from_dir=src)
    assert again.cached == 6 and again.exported == 0
    with pytest.raises(oc.DownloadError, match="no folder"):
        corpus.export_corpus(out, ["openewld"], num_proc=1, progress=False, from_dir=src)


def test_leadsheet_chord_symbols_become_a_chord_track():
    from music21 import harmony, meter, note, stream
    from symusic import Score

    part = stream.Part()
    for i, symbols in enumerate(([(0, "C")], [], [(0, "G7"), (2, "N.C.")], [(1, "F")])):
        m = stream.Measure(number=i + 1)
        if i == 0:
            m.insert(0, meter.TimeSignature("4/4"))
        for q in range(4):
            m.insert(q, note.Note("E5", quarterLength=1))
        for offset, figure in symbols:
            m.insert(offset, harmony.NoChord() if figure == "N.C." else harmony.ChordSymbol(figure))
        part.append(m)
    lead = oc.leadsheet_score(stream.Score([part]))
    assert [p.partName for p in lead.parts] == ["melody", "chords"]
    chords = [(float(c.getOffsetInHierarchy(lead)), float(c.quarterLength), sorted(p.midi % 12 for p in c.pitches))
              for c in lead.parts[1].recurse().getElementsByClass("Chord")]
    assert chords == [(0.0, 4.0, [0, 4, 7]), (4.0, 4.0, [0, 4, 7]), (8.0, 2.0, [2, 5, 7, 11]), (13.0, 3.0, [0, 5, 9])]
    score = Score.from_midi(corpus.score_to_midi(lead, "OPENEWLD"))
    assert [(t.name, t.program) for t in score.tracks] == [("melody", 73), ("chords", 0)]
    assert len(score.tracks[0].notes) == 16 and len(score.tracks[1].notes) == 3 + 3 + 4 + 3


def test_split_keeps_versions_of_a_song_together():
    sources = [f"R/Song{s}.{v}.mid" for s in range(20) for v in range(3)] + [f"B/w{i}.mid" for i in range(40)]
    songs = {s: s.rsplit(".", 2)[0] for s in sources if s.startswith("R/")}
    test = split_files(sources, 0.2, 7, songs)
    for s in range(20):
        sides = {f"R/Song{s}.{v}.mid" in test for v in range(3)}
        assert len(sides) == 1
    assert 10 <= len(test) <= 30  # about a fifth of the 60 songs' files
    plain = split_files(sources, 0.2, 7)  # without songs: by file, as before
    assert len(plain) == round(len(sources) * 0.2)
    assert any(len({f"R/Song{s}.{v}.mid" in plain for v in range(3)}) == 2 for s in range(20))


def test_drum_only_files_are_not_transposed(tmp_path):
    from mmmgen.config import CodecConfig
    from mmmgen.data.prepare import encode_files

    paths = [write(drums(0), tmp_path / "d.mid"), write(band(0), tmp_path / "b.mid")]
    results = encode_files(paths, ["d.mid", "b.mid"], CodecConfig(), [(-1, 0, 1), (-1, 0, 1)])
    assert sorted({w["transpose"] for w in results[0].windows}) == [0]
    assert sorted({w["transpose"] for w in results[1].windows}) == [-1, 0, 1]


def test_genres_csv_song_column_is_read(tmp_path):
    from mmmgen.data.prepare import read_genres_csv, read_song_keys

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([("path", "genre", "song"), ("R/a.0.mid", "ROCK", "R/a"), ("B/x.mid", "BACH", "")])
    (tmp_path / "g.csv").write_text(buffer.getvalue())
    assert read_genres_csv(tmp_path / "g.csv") == {"R/a.0.mid": "ROCK", "B/x.mid": "BACH"}
    assert read_song_keys(tmp_path / "g.csv") == {"R/a.0.mid": "R/a"}


def test_split_is_per_collection_and_unchanged_for_flat_folders():
    import random

    a = [f"A/x{i}.mid" for i in range(30)]
    b = [f"B/y{i}.mid" for i in range(50)]
    alone = split_files(a, 0.1, 3)
    together = split_files(a + b, 0.1, 3)
    assert alone == together & set(a) and len(alone) == 3 and len(together & set(b)) == 5
    flat = [f"s{i:02d}.mid" for i in range(40)]
    order = sorted(flat)
    random.Random(3).shuffle(order)  # the split before collections were split apart
    assert split_files(flat, 0.1, 3) == set(order[:4])


def test_cli_corpus_from_a_local_copy_and_without_a_pin(tmp_path, capsys):
    from mmmgen.cli import main

    write(drums(0), tmp_path / "corpora" / "groove" / "d" / "1_rock_90_beat_4-4.mid")
    assert main(["corpus", str(tmp_path / "out"), "--collections", "Drums", "--from", str(tmp_path / "corpora"), "--num-proc", "1"]) == 0
    assert "GROOVE" in capsys.readouterr().out and (tmp_path / "out" / "GROOVE" / "d" / "1_rock_90_beat_4-4.mid").is_file()
    assert main(["corpus", str(tmp_path / "out2"), "--collections", "nottingham", "--cache", str(tmp_path / "c")]) == 2
    assert "no pinned checksum" in capsys.readouterr().err
