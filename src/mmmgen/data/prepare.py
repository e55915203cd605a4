"""A folder of MIDI files becomes a Hugging Face dataset of MMM window texts: ``prepare``.

Two passes keep memory bounded for 100,000+ files: worker processes parse, window and encode
each file (``encode_file``) and the results stream to a JSON-lines spool on disk; then the
density edges are computed once over the training windows and the final texts are written with
``datasets``. Bad files are skipped, counted by reason and logged; they never stop the run.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmmgen.config import CodecConfig, PrepareConfig
from mmmgen.errors import MMMGenError
from mmmgen.text import vocab as V
from mmmgen.text.encode import TrackNotes, Window, parts_to_text, score_to_windows, window_to_parts

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
    root = Path(midi_dir)
    if not root.is_dir():
        msg = f"MIDI folder not found: {root}"
        raise DatasetError(msg)
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())


def load_score(path: str | Path):
    """Read a MIDI file with symusic; raises ``MidiLoadError`` for empty, corrupt or note-less files."""
    from symusic import Score

    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise MidiLoadError("empty file")
        score = Score(str(path))
    except MidiLoadError:
        raise
    except Exception as exc:  # symusic raises RuntimeError/ValueError/IndexError on bad bytes
        raise MidiLoadError("unreadable MIDI", str(exc)) from exc
    if score.note_num() == 0:
        raise MidiLoadError("no notes")
    return score


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
    return Window(window.time_signature, window.n_bars, window.bar_steps, tracks, window.start_bar)


@dataclass
class FileResult:
    """What one worker returns for one file: its windows' parts, or why it was skipped."""

    source: str
    windows: list[dict] = field(default_factory=list)
    skipped: str | None = None
    detail: str = ""


def encode_file(path: Path, source: str, config: CodecConfig, transpositions: tuple[int, ...] = (0,)) -> FileResult:
    """Parse, window and encode one file (runs in worker processes)."""
    try:
        score = load_score(path)
        windows = score_to_windows(score, config)
    except MidiLoadError as exc:
        return FileResult(source, skipped=exc.reason, detail=str(exc))
    except Exception as exc:  # a bug or an exotic file: keep the run alive, report it
        return FileResult(source, skipped=f"encoding error ({type(exc).__name__})", detail=str(exc))
    if not windows:
        return FileResult(source, skipped="no window with enough notes")
    out = []
    for window in windows:
        for shift in transpositions:
            w = transpose_window(window, shift) if shift else window
            if w.n_notes < max(config.min_notes, 1):
                continue
            parts = window_to_parts(w, config.grid)
            out.append({"start_bar": w.start_bar, "ts": list(w.time_signature), "transpose": shift, "parts": parts})
    return FileResult(source, out)


def _encode_task(args) -> FileResult:
    return encode_file(*args)


# --- --like MODEL: the codec settings of a trained model -----------------------------------------
MODEL_SETTINGS_NAME = "mmmgen.json"  # what model/run.py writes into every run folder
DEFAULT_MODEL = "default"
LIKE_CODEC = ("grid", "bars", "density_levels")  # what --like takes from the model (hop, min_notes: the user's)


def model_settings(name: str) -> tuple[Path, dict]:
    """The folder and ``mmmgen.json`` settings of a model named by ``--like`` / ``--init-from``.

    ``name``: ``default`` (the model shipped with mmmgen) or a run folder.

    Raises:
        DatasetError: no such model, or a folder that is not a trained run.
    """
    if name == DEFAULT_MODEL:
        from importlib.resources import files

        path = Path(str(files("mmmgen") / "resources" / "default_model"))
    else:
        path = Path(name)
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


def split_files(sources: list[str], test_size: float, seed: int) -> set[str]:
    """The sources of the test split: a seeded shuffle by file, so a song never straddles splits."""
    if test_size <= 0 or len(sources) < 2:
        return set()
    order = sorted(sources)
    random.Random(seed).shuffle(order)
    n_test = min(max(1, round(len(order) * test_size)), len(order) - 1)
    return set(order[:n_test])


def density_edges(counts: np.ndarray, levels: int) -> list[float]:
    """Quantile edges of notes-per-track counts: ``levels - 1`` edges for ``levels`` levels."""
    if len(counts) == 0 or levels <= 1:
        return []
    qs = np.linspace(0, 1, levels + 1)[1:-1]
    return [float(x) for x in np.quantile(counts, qs)]


def _iter_results(tasks: list, num_proc: int):
    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), desc="encoding MIDI", unit="file", disable=None, file=sys.stderr)
    if num_proc <= 1:
        for task in tasks:
            yield _encode_task(task)
            bar.update()
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn" if sys.platform == "darwin" else "fork")
        with ctx.Pool(num_proc, maxtasksperchild=500) as pool:
            for result in pool.imap_unordered(_encode_task, tasks, chunksize=4):
                yield result
                bar.update()
    bar.close()


def prepare(midi_dir: str | Path, out_dir: str | Path, config: PrepareConfig | None = None) -> dict:
    """MIDI folder -> ``DatasetDict`` (``train``/``test``) saved at ``out_dir`` + ``report.json``.

    Columns: ``text``, ``source`` (path relative to ``midi_dir``), ``start_bar``, ``genre``,
    ``transpose``, ``n_notes``. Returns the report.
    """
    config = config or PrepareConfig()
    started = time.time()
    midi_dir, out_dir = Path(midi_dir), Path(out_dir)
    files = find_midi_files(midi_dir)
    if config.max_files:
        files = files[: config.max_files]
    if not files:
        msg = f"no MIDI files (.mid/.midi) under {midi_dir}"
        raise DatasetError(msg)
    labels = read_genres_csv(config.genres) if config.genres else {}
    sources = [p.relative_to(midi_dir).as_posix() for p in files]
    test_sources = split_files(sources, config.test_size, config.seed)
    codec, like_edges, like = like_codec(config)
    shifts = tuple(range(-config.transpose, config.transpose + 1))
    tasks = [(p, s, codec, (0,) if s in test_sources else shifts) for p, s in zip(files, sources, strict=True)]

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".prepare-", dir=out_dir.parent))
    try:
        skipped, counts, kept = Counter(), [], 0
        with open(work / "spool.jsonl", "w", encoding="utf-8") as spool:
            for result in _iter_results(tasks, config.num_proc):
                if result.skipped:
                    skipped[result.skipped] += 1
                    log.warning("skipped %s: %s", result.source, result.detail or result.skipped)
                    continue
                kept += 1
                is_test = result.source in test_sources
                for w in result.windows:
                    if not is_test:
                        counts.extend(n for _, n, _ in w["parts"])
                    spool.write(json.dumps({"source": result.source, "test": is_test, **w}) + "\n")
        edges = like_edges if like else density_edges(np.asarray(counts), codec.density_levels)
        dataset = _build_dataset(work / "spool.jsonl", labels, edges, work / "cache", config.infill_prob, config.seed)
        report = {
            "files_total": len(files),
            "files_kept": kept,
            "files_skipped": dict(skipped),
            "windows": {split: len(ds) for split, ds in dataset.items()},
            "tokens": {split: int(sum(ds["n_words"])) for split, ds in dataset.items()},
            "infill_windows": {split: int(sum(ds["infill"])) for split, ds in dataset.items()},
            "genres": dict(Counter(dataset["train"]["genre"])),
            "codec": codec.to_dict(),
            "density_edges": edges,
            "genre_labels": sorted(set(labels.values()) | {V.OTHER_GENRE}),
            "settings": {k: v for k, v in vars(config).items() if k not in codec.to_dict()},
            "seconds": round(time.time() - started, 2),
        }
        if like:
            report["like"] = {**like, "new_words": _new_words(dataset, Path(like["path"]))}
        tmp_out = work / "dataset"
        shards = {k: max(1, math.ceil(ds.data.nbytes / 500e6)) for k, ds in dataset.items()}  # >=1: an empty split stays loadable
        dataset.save_to_disk(str(tmp_out), num_shards=shards)
        (tmp_out / REPORT_NAME).write_text(json.dumps(report, indent=2))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp_out, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def _build_dataset(spool: Path, labels: dict[str, str], edges: list[float], cache: Path, infill_prob: float = 0.0, seed: int = 0):
    from datasets import Dataset, DatasetDict, Features, Value

    from mmmgen.text.fill import random_fill

    features = Features(
        {
            "text": Value("string"),
            "source": Value("string"),
            "start_bar": Value("int32"),
            "genre": Value("string"),
            "transpose": Value("int8"),
            "n_notes": Value("int32"),
            "n_words": Value("int32"),
            "infill": Value("bool"),
        }
    )

    def rows(test: bool):
        with open(spool, encoding="utf-8") as f:
            for line in f:
                w = json.loads(line)
                if w["test"] != test:
                    continue
                genre = labels.get(w["source"], V.OTHER_GENRE)
                text = parts_to_text(tuple(w["ts"]), genre, w["parts"], edges)
                row = {
                    "text": text,
                    "source": w["source"],
                    "start_bar": w["start_bar"],
                    "genre": genre,
                    "transpose": w["transpose"],
                    "n_notes": sum(n for _, n, _ in w["parts"]),
                    "n_words": text.count(" ") + 1,
                    "infill": False,
                }
                yield row
                rng = random.Random(f"{seed}:{w['source']}:{w['start_bar']}:{w['transpose']}")  # stable per window
                if infill_prob and rng.random() < infill_prob:
                    masked = random_fill(text, rng)  # a new string: the plain row above is untouched
                    yield {**row, "text": masked, "n_words": masked.count(" ") + 1, "infill": True}

    def build(test: bool):
        has_rows = any(True for _ in rows(test))
        if not has_rows:
            return Dataset.from_dict({k: [] for k in features}, features=features)
        return Dataset.from_generator(rows, gen_kwargs={"test": test}, features=features, cache_dir=str(cache))

    return DatasetDict({"train": build(False), "test": build(True)})


def _new_words(dataset, model_dir: Path) -> list[str]:
    """Words of the dataset that the model of ``--like`` does not know (``train --init-from`` adds them)."""
    known = model_words(model_dir)
    if not known:
        return []
    words = set()
    for split in dataset.values():
        for text in split["text"]:
            words.update(text.split())
    return sorted(words - known)


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

