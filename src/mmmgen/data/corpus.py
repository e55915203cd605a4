"""Export music21's bundled public-domain corpus to MIDI: the embedded default dataset.

``export_corpus(out_dir)`` writes ``out_dir/<COLLECTION>/*.mid`` plus ``out_dir/genres.csv``
(``path,genre``; path relative to ``out_dir`` with ``/``, genre = collection name):

* BACH: the 4-part chorales of ``bach/`` (scores with exactly 4 parts: no instrumental works).
* PALESTRINA: the mass movements of ``palestrina/*.krn`` (3-8 voices).
* MONTEVERDI: the madrigals of ``monteverdi/*.mxl`` (5-6 voices).
* CLASSICAL: the 4-part scores (string quartets) of ``beethoven/``, ``mozart/``, ``haydn/``.
* FOLK: the Essen folksongs (``essenFolksong/*.abc``), one file per tune (``X:``), monophonic.
* CELTIC: O'Neill's 1850 (deduplicated by tune number) and Ryan's Mammoth, one file per tune.

Each part becomes one MIDI track on its own channel (0, 1, ... skipping drum channel 9) with
one General MIDI program:

* String quartets: by part name (violin 40 Violin, viola 41 Viola, cello/violoncello 42 Cello),
  else by part order ``(40, 40, 41, 42)``.
* Vocal polyphony (BACH, PALESTRINA, MONTEVERDI): a brass consort, after the cornetts and
  sackbuts that doubled church voices and the Stadtpfeifer who played chorales from Leipzig's
  towers, so every register gets a distinct instrument whose range fits the voice: soprano 56
  Trumpet, alto 60 French Horn, tenor 57 Trombone, bass 58 Tuba. The register comes from the
  part name (Soprano/Canto/Cantus/Superius, Alto/Altus/Contratenor, Tenor/Tenore,
  Bass/Basso/Bassus) or, for Quintus/Sextus/unnamed parts, from the part's median pitch
  (>= 68 G#4 soprano, >= 64 E4 alto, >= 57 A3 tenor, else bass).
* Monophonic tunes: FOLK 73 Flute, CELTIC 110 Fiddle; chords are reduced to their top note.

Chord symbols and grace notes are dropped; repeats are expanded (plain barlines when music21
cannot expand them); time signatures and tempo (music21's default 120 quarters per minute unless
the score has one) are written. A pickup is padded with a leading rest so that the first full
measure starts on a bar line (meta events stay at time 0).

Works run in a process pool; a failing work is logged, counted in the report and skipped.
``out_dir/manifest.json`` (per collection, keyed by music21 + exporter version) makes a second
identical run a no-op; files are written atomically (temp file + rename).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

from mmmgen.errors import MMMGenError

log = logging.getLogger(__name__)

COLLECTIONS: tuple[str, ...] = ("BACH", "PALESTRINA", "MONTEVERDI", "CLASSICAL", "FOLK", "CELTIC")
_SOURCES = {  # corpus folders, file types (earlier types win over a duplicate: .mxl over .krn)
    "BACH": (("bach",), (".mxl", ".xml", ".krn")), "PALESTRINA": (("palestrina",), (".krn",)),
    "MONTEVERDI": (("monteverdi",), (".mxl",)), "FOLK": (("essenFolksong",), (".abc",)),
    "CLASSICAL": (("beethoven", "mozart", "haydn"), (".mxl", ".krn")),
    "CELTIC": (("oneills1850", "ryansMammoth"), (".abc",)),
}
_FOUR_PART_ONLY = frozenset({"BACH", "CLASSICAL"})
_MONOPHONIC = frozenset({"FOLK", "CELTIC"})
_VOCAL = frozenset({"BACH", "PALESTRINA", "MONTEVERDI"})

VOICE_PROGRAMS: dict[str, int] = {"soprano": 56, "alto": 60, "tenor": 57, "bass": 58}
QUARTET_PROGRAMS: tuple[int, ...] = (40, 40, 41, 42)
MELODY_PROGRAMS: dict[str, int] = {"FOLK": 73, "CELTIC": 110}
_MELODY_NAMES = {"FOLK": "Flute", "CELTIC": "Fiddle"}
_RUN_ORDER = ("CLASSICAL", "MONTEVERDI", "PALESTRINA", "BACH", "CELTIC", "FOLK")  # slowest first
_VOICE_NAMES = (("bass", r"bass"), ("soprano", r"sopran|cant|superius|discant|treble"),
                ("alto", r"\balt|contra"), ("tenor", r"tenor"))
_VOICE_MIN_MEDIAN = (("soprano", 68), ("alto", 64), ("tenor", 57))
_STRING_NAMES = ((42, r"cello|\bvc"), (41, r"viola|\bvla"), (40, r"violin|\bvn|\bvl"))
_EXPORT_VERSION = 1  # bump when the conversion changes: invalidates every cached file
MANIFEST = "manifest.json"
GENRES = "genres.csv"


class UnknownCollectionError(MMMGenError, ValueError):
    """A collection name that is not one of :data:`COLLECTIONS`."""


class Work(NamedTuple):
    """One work to export: ``source`` is a corpus file, ``number`` a tune (X:) inside it."""

    work_id: str
    source: str
    number: int | None
    rel: str


@dataclass
class CorpusReport:
    """What one :func:`export_corpus` run did.

    Attributes:
        out_dir: The output folder.
        exported: Works converted in this run.
        cached: Works skipped because their MIDI file from an identical earlier run exists.
        failed: ``(work, reason)`` for works that could not be converted (this run or cached).
        per_collection: ``{name: {"works", "exported", "cached", "failed"}}``.
        files: MIDI files listed in genres.csv.
        seconds: Wall time of the run.
    """

    out_dir: str
    exported: int = 0
    cached: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    per_collection: dict[str, dict[str, int]] = field(default_factory=dict)
    files: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """JSON-ready dict, with ``failed_reasons`` (reason -> count) added."""
        out = asdict(self)
        out["failed"] = [list(item) for item in self.failed]
        out["failed_reasons"] = dict(Counter(reason for _, reason in self.failed))
        return out

    def summary(self) -> str:
        """One line per collection plus a total."""
        lines = [f"{name:<11} {c['works']:>5} works  {c['exported']:>5} exported  "
                 f"{c['cached']:>5} cached  {c['failed']:>4} failed"
                 for name, c in self.per_collection.items()]
        lines.append(f"{self.files} MIDI files in {self.out_dir} ({self.seconds:.1f} s)")
        return "\n".join(lines)


def select_collections(collections: list[str] | tuple[str, ...] | str | None) -> list[str]:
    """Normalise a selection to canonical names: music21's (``None``, ``all`` or ``music21``: every
    one of :data:`COLLECTIONS`) and the open ones of ``open_corpora`` (``open``: those whose licence
    allows training shipped weights; NOTTINGHAM only by name). Case-insensitive."""
    from mmmgen.data.open_corpora import OPEN, resolve

    if collections is None:
        return list(COLLECTIONS)
    if isinstance(collections, str):
        collections = [collections]
    names, unknown = [], []
    for c in (str(c).strip().upper() for c in collections):
        if c in ("ALL", "MUSIC21"):
            names += COLLECTIONS
        elif c == "OPEN":
            names += [spec.name for spec in OPEN.values() if spec.trainable]
        elif c in COLLECTIONS or resolve(c):
            names.append(c if c in COLLECTIONS else resolve(c))
        else:
            unknown.append(c)
    if unknown:
        msg = f"unknown collection(s) {unknown}; valid: {', '.join([*COLLECTIONS, *OPEN])}, all, open"
        raise UnknownCollectionError(msg)
    return list(dict.fromkeys(names))


def list_works(collection: str) -> list[Work]:
    """The works of one collection in the installed music21, in a deterministic order."""
    from music21 import common, corpus

    (collection,) = select_collections([collection])
    (dirs, exts), root = _SOURCES[collection], common.getCorpusFilePath()
    if collection in _FOUR_PART_ONLY:  # metadata cache: no parsing needed
        found = corpus.corpora.CoreCorpus().metadataBundle.search(numberOfParts=4)
        four_part = {found[i].sourcePath.as_posix() for i in range(len(found))}
    works: list[Work] = []
    seen: set[str] = set()
    for top in dirs:
        rels = [Path(p).relative_to(root) for p in corpus.getComposer(top)]
        rels = sorted((r for r in rels if r.parts[0] == top and r.suffix in exts),
                      key=lambda r: (exts.index(r.suffix), r))
        for rel in rels:
            stem, path = rel.with_suffix("").as_posix(), root / rel
            if stem in seen or (collection in _FOUR_PART_ONLY and rel.as_posix() not in four_part):
                continue
            seen.add(stem)
            name = re.sub(r"[^A-Za-z0-9.+-]+", "_", stem if len(dirs) > 1 else stem.split("/", 1)[1])
            tunes = _abc_numbers(path) if rel.suffix == ".abc" else []
            if len(tunes) < 2 and top != "oneills1850":  # one work per file
                works.append(Work(rel.as_posix(), str(path), None, f"{collection}/{name}.mid"))
                continue
            for number in tunes:
                if top == "oneills1850":  # its files overlap; O'Neill's tune numbers are global
                    if f"#{number}" in seen:
                        continue
                    seen.add(f"#{number}")
                rel_out = f"{collection}/{name}_{number:04d}.mid"
                works.append(Work(f"{rel.as_posix()}#{number}", str(path), number, rel_out))
    return works


def spread(items: list, n: int | None) -> list:
    """At most ``n`` items evenly spaced over ``items`` (first one included, order kept)."""
    if n is None or n >= len(items):
        return list(items)
    if n < 1:
        msg = f"sample size must be at least 1, got {n}"
        raise ValueError(msg)
    return [items[i * len(items) // n] for i in range(n)]


def _abc_numbers(path: Path) -> list[int]:
    """Reference numbers (``X:``) of the tunes in an ABC file, in file order."""
    text = path.read_text(encoding="latin-1")
    return list(dict.fromkeys(int(n) for n in re.findall(r"^X:\s*(\d+)", text, flags=re.MULTILINE)))


def _voice(label: str, median: float | None) -> str:
    for voice, pattern in _VOICE_NAMES:
        if re.search(pattern, label):
            return voice
    for voice, lowest in _VOICE_MIN_MEDIAN:
        if median is not None and median >= lowest:
            return voice
    return "bass"


def part_programs(collection: str, labels: list[str], medians: list[float | None]) -> list[int]:
    """General MIDI programs for the parts of one work (see the module docstring).

    Args:
        collection: Canonical collection name.
        labels: Lower-case part names (may be empty).
        medians: Median MIDI pitch of each part (``None`` for a part without notes).
    """
    if collection not in COLLECTIONS:  # an open collection's lead sheet: melody and chords parts
        from mmmgen.data.open_corpora import LEADSHEET_PROGRAMS

        return [LEADSHEET_PROGRAMS.get(lab.split()[0] if lab else "", 73) for lab in labels]
    if collection in _MONOPHONIC:
        return [MELODY_PROGRAMS[collection]] * len(labels)
    if collection in _VOCAL:
        return [VOICE_PROGRAMS[_voice(lab, med)] for lab, med in zip(labels, medians, strict=True)]
    programs = []
    for i, label in enumerate(labels):
        by_name = [prog for prog, pattern in _STRING_NAMES if re.search(pattern, label)]
        programs.append(by_name[0] if by_name else QUARTET_PROGRAMS[min(i, 3)])
    return programs


def _pickup_shift(parts: list) -> float:
    """Quarters of rest to insert so the first full measure starts on a bar line (0 = none)."""
    from music21 import meter, stream

    firsts = [p.getElementsByClass(stream.Measure).first() for p in parts]
    if not firsts or any(m is None for m in firsts):
        return 0.0
    ts = firsts[0].timeSignature or firsts[0].getContextByClass(meter.TimeSignature)
    if ts is None:
        return 0.0
    bar = float(ts.barDuration.quarterLength)
    filled = max(float(m.highestTime) for m in firsts)
    return bar - filled if 0 < filled < bar else 0.0


def score_to_midi(score, collection: str) -> bytes:
    """Convert a parsed music21 score of ``collection`` to MIDI bytes (programs, pickup, ...)."""
    import copy
    import statistics

    import symusic
    from music21 import chord, clef, harmony, instrument, key, meter, midi, note, repeat, stream
    from music21 import tempo as m21tempo

    if isinstance(score, stream.Opus):
        score = score.scores.first()
    if not isinstance(score, stream.Score):
        score = stream.Score([score])
    for el in list(score.recurse().getElementsByClass(harmony.Harmony)):
        el.activeSite.remove(el)
    for el in list(score.recurse().notes):
        if el.duration.isGrace:
            el.activeSite.remove(el)
    if collection in _MONOPHONIC:
        for ch in list(score.recurse().getElementsByClass(chord.Chord)):
            top = note.Note(max(ch.pitches), duration=ch.duration)
            top.tie = ch.tie
            ch.activeSite.replace(ch, top)
    seen: set[int] = set()  # music21's ABC reader shares one TimeSignature between measures
    context = (meter.TimeSignature, key.KeySignature, m21tempo.TempoIndication, clef.Clef)
    for st in score.recurse(streamsOnly=True, includeSelf=True):
        for el in list(st.getElementsByClass(context)):
            if id(el) in seen:
                st.replace(el, copy.deepcopy(el))
            seen.add(id(el))
    parts = list(score.parts)
    if not parts or not score.recurse().notes:
        raise ValueError("no notes")
    labels, medians = [], []
    for part in parts:
        names = [part.partName, part.id if isinstance(part.id, str) else None]
        names += [i.partName for i in part.recurse().getElementsByClass(instrument.Instrument)]
        labels.append(" ".join(n for n in names if n).lower())
        pitches = [p.midi for n in part.recurse().notes for p in n.pitches]
        medians.append(statistics.median(pitches) if pitches else None)
    programs = part_programs(collection, labels, medians)
    shift = _pickup_shift(parts)
    for part, program in zip(parts, programs, strict=True):
        for inst in list(part.recurse().getElementsByClass(instrument.Instrument)):
            inst.activeSite.remove(inst)
        inst = instrument.instrumentFromMidiProgram(program)
        inst.partName = _MELODY_NAMES.get(collection) or part.partName or inst.instrumentName
        part.partName = inst.partName
        part.insert(0, inst)
    try:
        data = midi.translate.streamToMidiFile(score).writestr()
    except (repeat.ExpanderException, IndexError) as exc:  # badly formed repeats (music21 may trip on them): export them unexpanded
        log.debug("%s: exporting without repeats", exc)
        _strip_repeats(score)
        data = midi.translate.streamToMidiFile(score).writestr()
    sc = symusic.Score.from_midi(data)
    ticks = round(shift * sc.ticks_per_quarter)
    tracks = [t for t in sc.tracks if len(t.notes)]
    if ticks:
        for track in tracks:
            track.shift_time(ticks, inplace=True)
        for events in (sc.time_signatures, sc.key_signatures, sc.tempos, sc.markers):
            for event in events:
                if event.time > 0:
                    event.time += ticks
    sc.tracks = tracks
    sc.time_signatures = _dedupe(sc.time_signatures, lambda e: (e.numerator, e.denominator))
    sc.key_signatures = _dedupe(sc.key_signatures, lambda e: (e.key, e.tonality))
    sc.tempos = _dedupe(sc.tempos, lambda e: e.mspq)
    return sc.dumps_midi()


def _dedupe(events, value) -> list:
    """Meta events sorted by time: the last one at each time, dropping repeats of the same value."""
    out: list = []
    for event in sorted(events, key=lambda e: e.time):
        while out and out[-1].time == event.time:
            out.pop()
        if not out or value(out[-1]) != value(event):
            out.append(event)
    return out


def _strip_repeats(score) -> None:
    """Turn repeat barlines into plain ones and drop repeat brackets/expressions (in place)."""
    from music21 import bar, repeat, spanner, stream

    for m in score.recurse().getElementsByClass(stream.Measure):
        for side in ("leftBarline", "rightBarline"):
            if isinstance(getattr(m, side), bar.Repeat):
                setattr(m, side, bar.Barline("regular"))
    for el in list(score.recurse().getElementsByClass((repeat.RepeatExpression, spanner.RepeatBracket))):
        el.activeSite.remove(el)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _export_one(task: tuple[str, str, int | None, str, str]) -> tuple[str, str | None]:
    """Pool worker: parse, convert and write one work; returns ``(work_id, error or None)``."""
    work_id, source, number, out_path, collection = task
    try:
        import warnings

        from music21 import converter

        if collection not in COLLECTIONS and Path(source).suffix.lower() in (".mid", ".midi"):
            _write_atomic(Path(out_path), Path(source).read_bytes())  # an open collection's MIDI file: as it is
            return work_id, None
        warnings.simplefilter("ignore")
        score = converter.parse(source, number=number, forceSource=True, storePickle=False)
        if collection not in COLLECTIONS:  # an open collection's lead sheet
            from mmmgen.data.open_corpora import leadsheet_score

            score = leadsheet_score(score)
        _write_atomic(Path(out_path), score_to_midi(score, collection))
        return work_id, None
    except Exception as exc:  # one bad work must never abort the run
        return work_id, f"{type(exc).__name__}: {exc}".replace("\n", " ")[:200]


def export_corpus(
    out_dir: str | os.PathLike,
    collections: list[str] | tuple[str, ...] | str | None = None,
    num_proc: int | None = None,
    progress: bool = True,
    limit: int | None = None,
    sample: int | None = None,
    from_dir: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    allow_unpinned: bool = False,
) -> CorpusReport:
    """Export the selected collections to ``out_dir/<NAME>/*.mid`` plus ``out_dir/genres.csv``.

    Args:
        out_dir: Output folder (created).
        collections: Names from :data:`COLLECTIONS` (case-insensitive); ``None`` = all.
        num_proc: Worker processes; default ``os.cpu_count()``; 1 runs in this process.
        progress: Show a tqdm progress bar.
        limit: At most this many works per collection (the first ones, sorted): smoke runs.
        sample: At most this many works per music21 collection, evenly spread over its sorted list
            (every source file and region keeps its share); applied before ``limit``. The open
            collections are small and kept whole (so their held-out songs never depend on it).
        from_dir: Where the open collections' local copies are (``from_dir/groove`` ...); None:
            download them (pinned, checksummed: ``open_corpora.locate``) into ``cache``.
        cache: Download folder (default ``out_dir/.downloads``).
        allow_unpinned: Accept a download of a collection without a pinned checksum.

    Returns:
        A :class:`CorpusReport`. Works that failed in an identical earlier run are reported as
        failed again without a retry (delete ``manifest.json`` to retry them).

    Raises:
        UnknownCollectionError: (a ``ValueError``) for a name not in :data:`COLLECTIONS`.
    """
    import multiprocessing

    import music21
    from tqdm.auto import tqdm

    start, names, out = time.perf_counter(), select_collections(collections), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    key = f"music21-{music21.__version__}/export-{_EXPORT_VERSION}"
    manifest_path = out / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    report, tasks = CorpusReport(out_dir=str(out)), []
    for name in names:
        works, name_key = _works_of(name, key, sample, limit, from_dir, cache or out / ".downloads", allow_unpinned)
        if manifest.get(name, {}).get("key") != name_key:
            manifest[name] = {"key": name_key, "done": {}, "failed": {}}
        state = manifest[name]
        for stale in (out / name).glob(".*.tmp"):  # left by an interrupted run
            stale.unlink(missing_ok=True)
        counts = report.per_collection[name] = dict.fromkeys(("exported", "cached", "failed"), 0)
        counts["works"] = len(works)
        for w in works:
            if state["done"].get(w.work_id) == w.rel and (out / w.rel).exists():
                counts["cached"] += 1
            elif w.work_id in state["failed"]:
                counts["failed"] += 1
                report.failed.append((w.work_id, state["failed"][w.work_id]))
            else:  # slow collections and big files first, so no straggler ends the run
                order = (_RUN_ORDER.index(name) if name in _RUN_ORDER else 0, -os.path.getsize(w.source) if w.number is None else 0)
                tasks.append((order, (w.work_id, w.source, w.number, str(out / w.rel), name)))
    report.cached = sum(c["cached"] for c in report.per_collection.values())
    tasks = [task for _, task in sorted(tasks, key=lambda t: t[0])]
    owner = {task[0]: (task[4], Path(task[3]).relative_to(out).as_posix()) for task in tasks}
    procs = max(1, min(num_proc or os.cpu_count() or 1, len(tasks)))
    pool = multiprocessing.get_context("spawn").Pool(procs, maxtasksperchild=200) if procs > 1 else None
    results = pool.imap_unordered(_export_one, tasks) if pool else map(_export_one, tasks)
    last_save = time.monotonic()
    try:
        for work_id, error in tqdm(results, total=len(tasks), desc="corpus", unit="work",
                                   disable=not progress or not tasks):
            name, rel = owner[work_id]
            if error is None:
                manifest[name]["done"][work_id] = rel
                report.per_collection[name]["exported"] += 1
                report.exported += 1
            else:
                log.warning("skipped %s: %s", work_id, error)
                manifest[name]["failed"][work_id] = error
                report.per_collection[name]["failed"] += 1
                report.failed.append((work_id, error))
            if time.monotonic() - last_save > 30:
                _write_json(manifest_path, manifest)
                last_save = time.monotonic()
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        _write_json(manifest_path, manifest)
    from mmmgen.data.open_corpora import OPEN, song_key, write_sources

    rows = sorted((rel, OPEN[name].genre if name in OPEN else name, song_key(name, rel)) for name in names
                  for rel in manifest[name]["done"].values() if (out / rel).exists())
    write_sources(out, [name for name in names if name in OPEN])
    songs = any(row[2] for row in rows)  # a song column only where versions of a song are grouped
    table = io.StringIO()
    csv.writer(table, lineterminator="\n").writerows([("path", "genre", "song")[: 2 + songs], *(r[: 2 + songs] for r in rows)])
    _write_atomic(out / GENRES, table.getvalue().encode())
    report.files, report.seconds = len(rows), time.perf_counter() - start
    log.info("corpus: %d exported, %d cached, %d failed, %d files in %s (%.1f s)",
             report.exported, report.cached, len(report.failed), report.files, out, report.seconds)
    return report


def _works_of(name: str, key: str, sample, limit, from_dir, cache, allow_unpinned: bool) -> tuple[list[Work], str]:
    """The works of one collection and its cache key (an open collection's: with its files' digest)."""
    if name in COLLECTIONS:
        return spread(list_works(name), sample)[:limit], key
    from mmmgen.data.open_corpora import locate, open_works

    root, digest = locate(name, from_dir, cache, allow_unpinned=allow_unpinned)
    return [Work(*w[:2], None, w[2]) for w in open_works(name, root)[:limit]], f"{key}/{digest}"  # small: never sampled


def _write_json(path: Path, obj: dict) -> None:
    _write_atomic(path, json.dumps(obj, indent=1, sort_keys=True).encode())
