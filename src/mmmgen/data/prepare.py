"""A folder of MIDI files becomes a Hugging Face dataset of MMM window texts: ``prepare``.

Two passes keep memory bounded for 100,000+ files. First, worker processes take chunks of files
(``CHUNK_FILES``, in file order), parse them and encode them together (``encode_files``, with
``text.batch``), and spool each chunk's windows to disk (``marshal``, one file per chunk and
split); only counts come back. Then the density edges are computed once over the training
windows, and the workers turn runs of consecutive spool files into the final texts and write
them as Arrow shards, one per worker, straight into the folder layout of
``DatasetDict.save_to_disk`` (``data/write.py``). The rows come out in file order whatever
``--num-proc`` is. Bad files are skipped, counted by reason and logged; they never stop the run.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import marshal
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from mmmgen.config import CodecConfig, PrepareConfig
from mmmgen.data import write as W
from mmmgen.data.write import finish_split, write_shards
from mmmgen.errors import MMMGenError
from mmmgen.text import vocab as V
from mmmgen.text.encode import TrackNotes, Window

log = logging.getLogger(__name__)

MIDI_SUFFIXES = {".mid", ".midi", ".kar", ".smf"}
REPORT_NAME = "report.json"


class MidiLoadError(MMMGenError):
    """A MIDI file that cannot be used; ``reason`` is a short category for reports."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class DatasetError(MMMGenError):
    """Bad input to ``prepare`` as a whole (missing folder, no MIDI files)."""


def find_midi_files(midi_dir: str | Path) -> list[Path]:
    """Every MIDI file under ``midi_dir`` (recursive, any suffix case), sorted."""
    return [Path(path) for path, _ in _midi_files(midi_dir)]


def _midi_files(midi_dir: str | Path) -> list[tuple[str, str]]:
    """``find_midi_files`` as strings, each beside its path relative to ``midi_dir`` (with ``/``):
    no ``Path`` objects to build, sort and send to workers for every one of 100,000 files."""
    root = Path(midi_dir)
    if not root.is_dir():
        msg = f"MIDI folder not found: {root}"
        raise DatasetError(msg)
    found = []
    for folder, _, names in os.walk(root, followlinks=True):  # as rglob("*"): links followed
        relative = os.path.relpath(folder, root)
        prefix = "" if relative == os.curdir else relative.replace(os.sep, "/") + "/"
        for name in names:
            if os.path.splitext(name)[1].lower() in MIDI_SUFFIXES and os.path.isfile(path := os.path.join(folder, name)):
                found.append((path, prefix + name))
    found.sort(key=lambda f: os.path.normcase(f[0]).split(os.sep))  # the order of sorted Paths: by part
    return found


def load_score(path: str | Path):
    """Read a MIDI file with symusic; raises ``MidiLoadError`` for empty, corrupt or note-less files."""
    from symusic import Score

    try:
        if os.stat(path).st_size == 0:
            raise MidiLoadError("empty file")
        score = Score(os.fspath(path))
    except MidiLoadError:
        raise
    except Exception as exc:  # symusic raises RuntimeError/ValueError/IndexError on bad bytes
        raise MidiLoadError("unreadable MIDI", str(exc)) from exc
    if score.note_num() == 0:
        raise MidiLoadError("no notes")
    return score


def read_song_keys(path: str | Path) -> dict[str, str]:
    """The optional ``song`` column of a genres CSV: {relative path: song} for the files that name one
    (versions of a song share it, and ``prepare`` keeps them on one side of the split)."""
    with open(path, newline="", encoding="utf-8") as f:
        return {Path(row["path"]).as_posix(): row["song"] for row in csv.DictReader(f) if row.get("song")}


def read_genres_csv(path: str | Path) -> dict[str, str]:
    """``path,genre`` CSV -> {relative path: token-safe genre}."""
    labels: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"path", "genre"} <= set(reader.fieldnames):
            msg = f"{path}: expected columns 'path,genre', found {reader.fieldnames}"
            raise DatasetError(msg)
        for row in reader:
            labels[Path(row["path"]).as_posix()] = V.normalize_genre(row["genre"])
    return labels


def transpose_window(window: Window, semitones: int) -> Window:
    """A transposed copy of a window: drums untouched, notes pushed out of 0..127 dropped."""
    tracks = []
    for t in window.tracks:
        notes = t.notes.copy()
        if not t.is_drum:
            notes[:, 0] += semitones
            notes = notes[(notes[:, 0] >= 0) & (notes[:, 0] < V.N_PITCHES)]
        if len(notes):
            tracks.append(TrackNotes(t.program, t.is_drum, notes))
    return Window(window.time_signature, window.n_bars, window.bar_steps, tracks, window.start_bar, window.start_step)


@dataclass
class FileResult:
    """What one worker returns for one file: its windows' parts, or why it was skipped."""

    source: str
    windows: list[dict] = field(default_factory=list)
    skipped: str | None = None
    detail: str = ""


CHORD_TRACK = V.chord_track_inst()  # the INST word of the chord track (prepare --chords)
BATCH_NOTES = 30_000  # notes (times windows and transpositions) encoded together: few numpy calls, arrays in cache


def encode_files(paths: list[str | Path], sources: list[str], config: CodecConfig, transpositions: list[tuple[int, ...]]) -> list[FileResult]:
    """Parse, window and encode files (in worker processes), several at once: ``text.batch``'s
    ``scores_to_parts`` encodes batches of about ``BATCH_NOTES`` notes together."""
    results = [FileResult(source) for source in sources]
    loaded: list[tuple[int, object]] = []
    transpositions = list(transpositions)
    for i, path in enumerate(paths):
        try:
            loaded.append((i, load_score(path)))
            if all(t.is_drum for t in loaded[-1][1].tracks if len(t.notes)):  # drums only: transposing copies nothing new
                transpositions[i] = (0,)
        except MidiLoadError as exc:
            results[i] = FileResult(sources[i], skipped=exc.reason, detail=str(exc))
        except Exception as exc:  # e.g. the file vanished: keep the run alive, report it
            results[i] = FileResult(sources[i], skipped=f"encoding error ({type(exc).__name__})", detail=str(exc))
    copies = -(-config.bars // (config.hop or config.bars))  # windows a note can sound in
    batch: list[tuple[int, object]] = []
    size = 0
    for n, (i, score) in enumerate(loaded):
        batch.append((i, score))
        size += score.note_num() * copies * len(transpositions[i])
        if size >= BATCH_NOTES or n + 1 == len(loaded):
            _encode_batch(batch, config, transpositions, results)
            batch, size = [], 0
    return results


def _encode_batch(batch: list[tuple[int, object]], config: CodecConfig, transpositions: list[tuple[int, ...]], results: list[FileResult]) -> None:
    from mmmgen.text.batch import scores_to_parts

    try:
        scores, shifts = [score for _, score in batch], [transpositions[i] for i, _ in batch]
        if config.chords:  # the chord track first (prepare --chords), in the files of --chords-share
            chords = [score_chords(score) if takes_chords(results[i].source, config.chords_share) else None for i, score in batch]
            windows = scores_to_parts(scores, config, shifts, chords)
        else:
            windows = scores_to_parts(scores, config, shifts)
    except Exception as exc:  # a bug or an exotic file: find which file, keep the run alive, report it
        if len(batch) > 1:
            for one in batch:
                _encode_batch([one], config, transpositions, results)
            return
        i = batch[0][0]
        results[i] = FileResult(results[i].source, skipped=f"encoding error ({type(exc).__name__})", detail=str(exc))
        return
    for (i, _), found in zip(batch, windows, strict=True):
        if found:
            results[i].windows = found
        else:
            results[i] = FileResult(results[i].source, skipped="no window with enough notes")


def takes_chords(source: str, share: float) -> bool:
    """Whether the file ``source`` gets the chord track under ``--chords-share share``: a fixed draw by its name
    (the same in every run and worker), so about ``share`` of the files do."""
    import zlib

    return share >= 1 or zlib.crc32(source.encode()) % 10_000 < share * 10_000


def score_chords(score) -> list:
    """The chords of a score for its chord track (``prepare --chords``): its own chord symbols
    (MIDI markers that all read as chords, as ``mmmgen`` writes them), else ``read_chords`` of its notes."""
    from mmmgen.text.chord_track import marker_chords
    from mmmgen.text.harmony import read_chords

    return marker_chords(score) or read_chords(score)


def encode_file(path: str | Path, source: str, config: CodecConfig, transpositions: tuple[int, ...] = (0,)) -> FileResult:
    """Parse, window and encode one file: its windows (one per transposition) as
    ``{"start_bar", "ts", "transpose", "parts"}`` (see ``window_to_parts``), or why it was skipped."""
    return encode_files([path], [source], config, [transpositions])[0]


# --- --like MODEL: the codec settings of a trained model -----------------------------------------
MODEL_SETTINGS_NAME = "mmmgen.json"  # what model/run.py writes into every run folder
DEFAULT_MODEL = "default"
LIKE_CODEC = ("grid", "bars", "density_levels")  # what --like takes from the model (hop, min_notes: the user's)


def shipped_model_path(name: str = DEFAULT_MODEL) -> Path:
    """Where a model shipped with the package lives, present or not: ``default`` in
    ``mmmgen/resources/default_model``, an earlier one kept by name (``default-v1``) in ``default_model_v1``."""
    from importlib.resources import files

    suffix = name.removeprefix(DEFAULT_MODEL).lstrip("-_")
    return Path(str(files("mmmgen") / "resources" / ("default_model" + (f"_{suffix}" if suffix else ""))))


def is_shipped_name(name: str | None) -> bool:
    """``default`` or ``default-NAME`` (a shipped model kept by name), not a folder of that name."""
    return bool(name) and re.fullmatch(r"default([-_]\w+)?", name) is not None and not Path(name).exists()


def model_settings(name: str) -> tuple[Path, dict]:
    """The folder and ``mmmgen.json`` settings of a model named by ``--like`` / ``--init-from``.

    ``name``: ``default`` (the model shipped with mmmgen) or a run folder.

    Raises:
        DatasetError: no such model, or a folder that is not a trained run.
    """
    path = shipped_model_path(name) if is_shipped_name(name) else Path(name)
    settings = path / MODEL_SETTINGS_NAME
    if not settings.is_file() or not (path / "config.json").is_file():
        what = "the shipped model is missing from this install" if name == DEFAULT_MODEL else f"not a trained run folder: {path}"
        msg = f"{what} (needs {MODEL_SETTINGS_NAME} and config.json); pass 'default' or a run folder of `mmmgen train`"
        raise DatasetError(msg)
    return path, json.loads(settings.read_text())


def model_words(path: Path) -> set[str]:
    """The words of a run folder's tokenizer (its WordLevel vocabulary), read without transformers."""
    try:
        return set(json.loads((path / "tokenizer.json").read_text())["model"]["vocab"])
    except (OSError, ValueError, KeyError):
        return set()


def like_codec(config: PrepareConfig) -> tuple[CodecConfig, list[float] | None, dict | None]:
    """The codec, density edges and ``like`` report entry for ``config`` (the model's with ``--like``)."""
    codec = config.codec()
    if not config.like:
        return codec, None, None
    path, settings = model_settings(config.like)
    theirs = settings.get("codec", {})
    for key in LIKE_CODEC:
        if key in theirs and getattr(codec, key) != theirs[key]:
            log.info("--like %s: %s %s (instead of %s)", config.like, key, theirs[key], getattr(codec, key))
            setattr(codec, key, theirs[key])
    edges = [float(e) for e in settings.get("density_edges", [])]
    if len(edges) != max(codec.density_levels - 1, 0):
        msg = f"--like {config.like}: {len(edges)} density edges for {codec.density_levels} levels in {path / MODEL_SETTINGS_NAME}"
        raise DatasetError(msg)
    return codec, edges, {"model": config.like, "path": str(path.resolve()), "genre_labels": settings.get("genre_labels", [])}


def split_files(sources: list[str], test_size: float, seed: int, songs: dict[str, str] | None = None) -> set[str]:
    """The sources of the test split: a seeded shuffle by song, so a song never straddles splits.

    Each collection (the first folder of a source; the files at the top are one) is split on its own,
    ``test_size`` of its songs each, so which songs a collection holds out does not change when other
    collections join the folder. ``songs`` maps a source to its song (versions of one song share
    it); a source it does not name is a song of its own. A folder without sub-folders is shuffled
    as one list by file, as before collections were split apart."""
    key = {s: (songs or {}).get(s, s) for s in sources}
    groups: dict[str, set[str]] = {}
    for s in sources:
        head, sep, _ = s.partition("/")
        groups.setdefault(head if sep else "", set()).add(key[s])
    test: set[str] = set()
    for group, members in groups.items():
        order = sorted(members)
        if test_size <= 0 or len(order) < 2:
            continue
        random.Random(seed if not group else f"{seed}/{group}").shuffle(order)
        test.update(order[: min(max(1, round(len(order) * test_size)), len(order) - 1)])
    return {s for s in sources if key[s] in test}


def density_edges(counts: np.ndarray, levels: int) -> list[float]:
    """Quantile edges of notes-per-track counts: ``levels - 1`` edges for ``levels`` levels."""
    if len(counts) == 0 or levels <= 1:
        return []
    qs = np.linspace(0, 1, levels + 1)[1:-1]
    return [float(x) for x in np.quantile(counts, qs)]


CHUNK_FILES = 64  # files per worker task (fewer when that leaves a worker idle)


@dataclass
class ChunkResult:
    """What a worker reports for a chunk of files, whose windows it spooled (``marshal``'d records,
    one file per split): the files skipped (source, reason, detail), how many were kept, the
    windows spooled per split and the notes per track of the training windows (for the density
    edges). The texts stay on disk: nothing large crosses processes."""

    skipped: list[tuple[str, str, str]]
    kept: int
    rows: dict[bool, int]  # test? -> windows
    counts: list[int]


def _spool_files(work: Path, chunk: int) -> dict[bool, Path]:
    return {test: work / f"{chunk:06d}-{'test' if test else 'train'}.spool" for test in (False, True)}


def _encode_chunk(task) -> ChunkResult:
    chunk, paths, sources, codec, shifts, tests, work = task
    results = encode_files(paths, sources, codec, [(0,) if test else shifts for test in tests])
    skipped, records, counts = [], {False: [], True: []}, []
    for result, test in zip(results, tests, strict=True):
        if result.skipped:
            skipped.append((result.source, result.skipped, result.detail))
            continue
        for w in result.windows:
            if not test:
                counts.extend(n for word, n, _ in w["parts"] if word != CHORD_TRACK)  # the chord track has no density
            records[test].append((result.source, w["start_bar"], w["ts"], w["transpose"], w["parts"]))
    for test, path in _spool_files(work, chunk).items():
        if records[test]:
            with open(path, "wb") as f:
                marshal.dump(records[test], f)
    return ChunkResult(skipped, len(results) - len(skipped), {k: len(v) for k, v in records.items()}, counts)


def _shards_task(job) -> tuple[list[Path], Counter]:
    return write_shards(*job)


def _worker_pool(num_proc: int, n_tasks: int):
    """A pool of ``num_proc`` workers (forked where that is safe), or None to work in this process."""
    if num_proc <= 1 or n_tasks <= 1:
        return None
    import multiprocessing as mp

    return mp.get_context("spawn" if sys.platform == "darwin" else "fork").Pool(min(num_proc, n_tasks))


def prepare(midi_dir: str | Path, out_dir: str | Path, config: PrepareConfig | None = None) -> dict:
    """MIDI folder -> ``DatasetDict`` (``train``/``test``) saved at ``out_dir`` + ``report.json``.

    Columns: ``text``, ``source`` (path relative to ``midi_dir``), ``start_bar``, ``genre``,
    ``transpose``, ``n_notes``. Returns the report.
    """
    config = config or PrepareConfig()
    started = time.time()
    midi_dir, out_dir = Path(midi_dir), Path(out_dir)
    found = _midi_files(midi_dir)
    if config.max_files:
        found = found[: config.max_files]
    files, sources = [path for path, _ in found], [source for _, source in found]
    if not files:
        msg = f"no MIDI files (.mid/.midi) under {midi_dir}"
        raise DatasetError(msg)
    labels = read_genres_csv(config.genres) if config.genres else {}
    test_sources = split_files(sources, config.test_size, config.seed, read_song_keys(config.genres) if config.genres else None)
    codec, like_edges, like = like_codec(config)
    shifts = tuple(range(-config.transpose, config.transpose + 1))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".prepare-", dir=out_dir.parent))
    size = max(1, min(CHUNK_FILES, -(-len(files) // (4 * config.num_proc))))  # >= 4 tasks per worker
    tasks = [
        (i // size, files[i : i + size], sources[i : i + size], codec, shifts, [s in test_sources for s in sources[i : i + size]], work)
        for i in range(0, len(files), size)
    ]
    pool = None
    try:
        pool = _worker_pool(config.num_proc, len(tasks))
        imap = pool.imap if pool else map  # in task order: the dataset does not depend on --num-proc
        skipped, counts, kept = Counter(), [], 0
        chunks: list[tuple[int, dict[bool, int], list[str]]] = []  # chunk, windows per split, sources
        with _progress(len(files)) as bar:
            for task, chunk in zip(tasks, imap(_encode_chunk, tasks), strict=True):
                for source, reason, detail in chunk.skipped:
                    skipped[reason] += 1
                    log.warning("skipped %s: %s", source, detail or reason)
                kept += chunk.kept
                counts.extend(chunk.counts)
                chunks.append((task[0], chunk.rows, task[2]))
                bar.update(len(task[1]))
        if not kept:
            raise DatasetError(nothing_kept(len(files), skipped))
        edges = like_edges if like else density_edges(np.asarray(counts), codec.density_levels)
        tmp_out = work / "dataset"
        stats = {}
        for split, test in (("train", False), ("test", True)):  # the texts, in Arrow shards written by the workers
            (tmp_out / split).mkdir(parents=True)
            kits, octaves = (0.0, 0.0) if test else (config.kit_subsets, config.octave_copies)  # the test split: the music as it is
            jobs = [(spools, tmp_out / split / f"shard-{j}", labels_of, edges, config.infill_prob, config.seed, kits, codec.grid, octaves)
                    for j, (spools, labels_of) in enumerate(_split_jobs(chunks, work, test, labels, config.num_proc))]  # fmt: skip
            shards, stats[split] = [], Counter()
            for written, counted in imap(_shards_task, jobs):
                shards += written
                stats[split].update(counted)
            finish_split(tmp_out / split, shards, stats[split], split)
        (tmp_out / "dataset_dict.json").write_text(json.dumps({"splits": list(stats)}))
        report = {
            "files_total": len(files),
            "files_kept": kept,
            "files_skipped": dict(skipped),
            "windows": {split: st["windows"] for split, st in stats.items()},
            "tokens": {split: st["tokens"] for split, st in stats.items()},
            "infill_windows": {split: st["infill"] for split, st in stats.items()},
            "kit_subset_windows": stats["train"]["kit_subsets"],
            "octave_copy_windows": stats["train"]["octave_copies"],
            "genres": dict(stats["train"]["genres"]),
            "codec": codec.to_dict(),
            "density_edges": edges,
            "genre_labels": sorted(set(labels.values()) | {V.OTHER_GENRE}),
            "settings": {k: v for k, v in vars(config).items() if k not in codec.to_dict()},
            "seconds": round(time.time() - started, 2),
        }
        if like:
            report["like"] = {**like, "new_words": W.new_words(tmp_out, model_words(Path(like["path"])))}
        (tmp_out / REPORT_NAME).write_text(json.dumps(report, indent=2))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp_out, out_dir)
    finally:
        if pool:
            pool.terminate()
        shutil.rmtree(work, ignore_errors=True)
    return report


def nothing_kept(n_files: int, skipped: Counter) -> str:
    """The message of a ``prepare`` that kept no window: every file skipped, and why."""
    reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(skipped.items()))
    return f"no dataset written: none of the {n_files} MIDI files gave a window ({reasons}); see the warnings above for each file"


def _progress(total: int):
    """tqdm's bar on a terminal or in a notebook; elsewhere (a pipe, a log file: where tqdm would
    not draw it either) a stand-in, which saves importing tqdm (about 0.05 s)."""
    if not sys.stderr.isatty() and "IPython" not in sys.modules:
        return contextlib.nullcontext(SimpleNamespace(update=lambda n=1: None))
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="encoding MIDI", unit="file", disable=None, file=sys.stderr)


def _split_jobs(chunks: list, work: Path, test: bool, labels: dict[str, str], num_proc: int) -> list[tuple[list[Path], dict]]:
    """A split's spool files cut into ``num_proc`` runs of consecutive chunks with about as many
    windows each (one Arrow shard per run, as ``save_to_disk(num_proc=...)`` writes), each with
    the genre labels of its files: ``(spool files, labels)``."""
    full = [(chunk, rows[test], sources) for chunk, rows, sources in chunks if rows[test]]
    total = sum(rows for _, rows, _ in full)
    n_jobs = max(1, min(num_proc, len(full)))
    jobs: list[tuple[list[Path], dict]] = [([], {}) for _ in range(n_jobs)]
    done = 0
    for chunk, rows, sources in full:
        spools, labels_of = jobs[min(n_jobs - 1, done * n_jobs // total)]
        spools.append(_spool_files(work, chunk)[test])
        labels_of.update((s, labels[s]) for s in sources if s in labels)
        done += rows
    return jobs


def load_report(dataset_dir: str | Path) -> dict:
    """The ``report.json`` of a prepared dataset (settings later stages need)."""
    path = Path(dataset_dir) / REPORT_NAME
    if not path.is_file():
        msg = f"not a prepared dataset (no {REPORT_NAME}): {dataset_dir}"
        raise DatasetError(msg)
    return json.loads(path.read_text())


def format_report(report: dict) -> str:
    """A short human summary of a prepare report."""
    skipped = sum(report["files_skipped"].values())
    lines = [
        f"files: {report['files_total']} found, {report['files_kept']} kept, {skipped} skipped",
        *(f"  skipped ({reason}): {n}" for reason, n in sorted(report["files_skipped"].items())),
        "windows: " + ", ".join(f"{k} {v}" for k, v in report["windows"].items()),
        "tokens:  " + ", ".join(f"{k} {v:,}" for k, v in report["tokens"].items()),
        "genres:  " + ", ".join(f"{k} {v}" for k, v in sorted(report["genres"].items())),
        f"density edges (notes per track): {[round(e, 1) for e in report['density_edges']]}",
        *([f"like model {report['like']['model']}: grid {report['codec']['grid']}, {report['codec']['bars']} bars, its density edges; "
           f"words new to it: {', '.join(report['like']['new_words']) or 'none'}"] if "like" in report else []),
        f"time: {report['seconds']} s",
    ]
    return "\n".join(lines)

