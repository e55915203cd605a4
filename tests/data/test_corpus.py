"""The embedded music21 corpus export: layout, programs, pickups, cache, failures, monophony."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import pytest
from symusic import Score

from mmmgen.data import corpus


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, corpus.CorpusReport]:
    out = tmp_path_factory.mktemp("corpus")
    report = corpus.export_corpus(out, ["bach", "Folk"], num_proc=2, progress=False, limit=3)
    return out, report


def read_genres(out: Path) -> list[dict[str, str]]:
    with (out / corpus.GENRES).open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_layout_and_genres_csv(exported):
    out, report = exported
    assert report.exported == 6 and report.cached == 0 and not report.failed
    assert report.per_collection["BACH"] == {"works": 3, "exported": 3, "cached": 0, "failed": 0}
    rows = read_genres(out)
    assert len(rows) == 6 and list(rows[0]) == ["path", "genre"]
    for row in rows:
        assert "\\" not in row["path"] and row["path"].split("/")[0] == row["genre"]
        assert (out / row["path"]).is_file()
    assert sorted({r["genre"] for r in rows}) == ["BACH", "FOLK"]
    json.dumps(report.to_dict())
    assert "BACH" in report.summary()


def test_chorale_tracks_have_voice_programs_and_sounding_pitches(exported):
    from music21 import corpus as m21corpus

    out, _ = exported
    score = Score(str(out / "BACH" / "bwv10.7.mid"))
    assert [t.program for t in score.tracks] == [56, 60, 57, 58]  # S A T B
    source = m21corpus.parse("bach/bwv10.7.mxl").stripTies()  # trumpet/horn must not transpose
    for part, track in zip(source.parts, score.tracks, strict=True):
        assert sorted(n.pitch.midi for n in part.recurse().notes) == sorted(n.pitch for n in track.notes)
    assert all(len(t.notes) and not t.is_drum for t in score.tracks)
    ts = score.time_signatures[0]
    assert (ts.time, ts.numerator, ts.denominator) == (0, 4, 4)
    assert len(score.tempos) >= 1


def test_folk_tune_is_one_flute_track(exported):
    out, _ = exported
    rows = [r for r in read_genres(out) if r["genre"] == "FOLK"]
    for row in rows:
        score = Score(str(out / row["path"]))
        assert [t.program for t in score.tracks] == [corpus.MELODY_PROGRAMS["FOLK"]]


def test_pickup_is_padded_to_a_bar_line(exported):
    from music21 import corpus as m21corpus
    from music21 import stream

    out, _ = exported
    source = m21corpus.parse("bach/bwv101.7.mxl")  # 4/4 with a one-beat pickup
    measures = list(source.parts[0].getElementsByClass(stream.Measure))
    pickup = measures[0].highestTime
    assert 0 < pickup < 4
    score = Score(str(out / "BACH" / "bwv101.7.mid"))
    tpq = score.ticks_per_quarter
    bar, shift = 4 * tpq, round((4 - pickup) * tpq)
    assert (score.time_signatures[0].numerator, score.time_signatures[0].denominator) == (4, 4)
    assert min(n.time for t in score.tracks for n in t.notes) == shift  # pickup ends on bar 1
    onsets = sorted(n.time for n in score.tracks[0].notes)
    assert onsets[0] == shift and bar in onsets  # the first downbeat note starts the bar
    numbered = [m for m in measures[1:] if not m.numberSuffix]  # "4a": 2nd half of a split bar
    assert len(numbered) >= 10
    for m in numbered:  # every numbered measure starts on a bar line of the MIDI's meter
        assert (round(m.getOffsetInHierarchy(source) * tpq) + shift) % bar == 0
    expected = {round(n.getOffsetInHierarchy(source) * tpq) + shift
                for n in source.parts[0].recurse().notes if n.tie is None or n.tie.type == "start"}
    assert set(onsets) == expected


def test_second_run_is_cached_and_rewrites_nothing(exported):
    out, _ = exported
    mids = sorted(out.rglob("*.mid"))
    before = {p: p.stat().st_mtime_ns for p in mids}
    rows = read_genres(out)
    again = corpus.export_corpus(out, ["BACH", "FOLK"], num_proc=2, progress=False, limit=3)
    assert again.exported == 0 and again.cached == 6 and not again.failed
    assert {p: p.stat().st_mtime_ns for p in sorted(out.rglob("*.mid"))} == before
    assert read_genres(out) == rows
    assert not list(out.rglob("*.tmp"))


def test_unknown_collection_raises(tmp_path):
    with pytest.raises(ValueError, match="valid: BACH"):
        corpus.export_corpus(tmp_path, ["BACH", "jazz"], progress=False)
    assert corpus.select_collections(["celtic", "Bach"]) == ["CELTIC", "BACH"]
    assert set(corpus.COLLECTIONS) == {"BACH", "PALESTRINA", "MONTEVERDI", "CLASSICAL", "FOLK", "CELTIC"}


def test_celtic_tune_is_monophonic(tmp_path):
    report = corpus.export_corpus(tmp_path, "CELTIC", num_proc=1, progress=False, limit=2)
    assert report.exported == 2
    for path in sorted((tmp_path / "CELTIC").glob("*.mid")):
        (track,) = Score(str(path)).tracks
        assert track.program == corpus.MELODY_PROGRAMS["CELTIC"]
        notes = sorted(track.notes, key=lambda n: n.time)
        assert len(notes) > 20
        assert all(a.time + a.duration <= b.time for a, b in itertools.pairwise(notes))


def test_a_failing_work_is_skipped_counted_and_not_retried(tmp_path, monkeypatch):
    real = corpus.score_to_midi

    def flaky(score, collection):
        if str(score.metadata.number) == "2":
            raise RuntimeError("boom")
        return real(score, collection)

    monkeypatch.setattr(corpus, "score_to_midi", flaky)
    report = corpus.export_corpus(tmp_path, ["FOLK"], num_proc=1, progress=False, limit=3)
    assert report.exported == 2 and len(report.failed) == 1
    (work, reason), = report.failed
    assert work.endswith("#2") and reason == "RuntimeError: boom"
    assert report.to_dict()["failed_reasons"] == {"RuntimeError: boom": 1}
    assert len(read_genres(tmp_path)) == 2
    again = corpus.export_corpus(tmp_path, ["FOLK"], num_proc=1, progress=False, limit=3)
    assert again.exported == 0 and again.cached == 2 and len(again.failed) == 1


def test_work_lists_match_the_installed_corpus():
    bach = corpus.list_works("BACH")
    assert len(bach) > 300 and all(w.number is None for w in bach)
    assert not any("846" in w.work_id or w.work_id.endswith(".rntxt") for w in bach)
    classical = {w.work_id.split("/")[0] for w in corpus.list_works("CLASSICAL")}
    assert classical == {"beethoven", "mozart", "haydn"}
    assert not any("k545" in w.work_id for w in corpus.list_works("CLASSICAL"))
    folk = corpus.list_works("FOLK")
    assert len(folk) > 8000 and len({w.rel for w in folk}) == len(folk)


def test_part_programs_by_name_then_range():
    labels = ["cantus", "quintus", "altus", "tenor", "bassus"]
    assert corpus.part_programs("PALESTRINA", labels, [72, 66, 65, 60, 50]) == [56, 60, 60, 57, 58]
    assert corpus.part_programs("MONTEVERDI", ["", "", "", ""], [71, 65, 59, 48]) == [56, 60, 57, 58]
    quartet = ["violin i", "violin ii", "viola", "violoncello"]
    assert corpus.part_programs("CLASSICAL", quartet, [76, 67, 60, 50]) == [40, 40, 41, 42]
    assert corpus.part_programs("CLASSICAL", ["a", "b", "c", "d"], [None] * 4) == [40, 40, 41, 42]


def test_spread_sample_is_even_and_keeps_order():
    items = list(range(10))
    assert corpus.spread(items, 5) == [0, 2, 4, 6, 8]
    assert corpus.spread(items, 3) == [0, 3, 6]
    assert corpus.spread(items, None) == items == corpus.spread(items, 50)
    with pytest.raises(ValueError, match="at least 1"):
        corpus.spread(items, 0)
