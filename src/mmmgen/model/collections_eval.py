"""Held-out bits per note per collection, for several models on the same songs (``scripts/eval_collections.py``).

One table compares models (the shipped v1, a new run) on the same held-out windows:

* ``corpus`` folders (``mmmgen corpus`` output, with ``genres.csv``): the test files are the ones
  ``mmmgen prepare`` holds out of that folder (``split_files``: the same seed, share and songs), so
  a model prepared and trained on the folder never saw them; grouped by collection (first folder).
* ``midi`` folders (e.g. ``../shared/midi-styles``): every file, grouped by sub-folder; music no
  compared model trained on.

Each model encodes the files with its own codec settings (grid, bars, density edges, as
``evaluate --midi``); a window's genre is the file's label when the model knows it, else ``OTHER``.
Windows are taken evenly over each collection's list (at most ``max_windows``), the same ones for
models that share grid and bars. Likelihood as ``mmmgen evaluate`` (``likelihood``).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import fields, replace
from pathlib import Path

from mmmgen.data.mix import collection_of
from mmmgen.model.evaluate import EvaluateError, _load_model, likelihood, write_json
from mmmgen.text import vocab as V

log = logging.getLogger(__name__)


def heldout_sets(corpora: list[str | Path], midi: list[str | Path], test_size: float = 0.1, seed: int = 42) -> dict[str, list[tuple[Path, str]]]:
    """``{collection: [(file, genre label)]}``: the held-out files of each corpus folder by collection,
    then every file of each ``midi`` folder's sub-folders (``styles/NAME``)."""
    from mmmgen.data.prepare import find_midi_files, read_genres_csv, read_song_keys, split_files

    sets: dict[str, list[tuple[Path, str]]] = {}
    for corpus in map(Path, corpora):
        csv_path = corpus / "genres.csv"
        labels = read_genres_csv(csv_path) if csv_path.is_file() else {}
        songs = read_song_keys(csv_path) if csv_path.is_file() else {}
        files = {p.relative_to(corpus).as_posix(): p for p in find_midi_files(corpus)}
        for source in sorted(split_files(list(files), test_size, seed, songs)):
            sets.setdefault(collection_of(source) or corpus.name, []).append((files[source], labels.get(source, V.OTHER_GENRE)))
    for folder in map(Path, midi):
        for path in find_midi_files(folder):
            rel = path.relative_to(folder).as_posix()
            sets.setdefault(f"{folder.name}/{collection_of(rel).lower() or '.'}", []).append((path, V.OTHER_GENRE))
    if not sets:
        msg = "no held-out MIDI files: give corpus folders (mmmgen corpus) or MIDI folders"
        raise EvaluateError(msg)
    return sets


def collection_texts(files: list[tuple[Path, str]], settings: dict, max_windows: int | None) -> tuple[list[str], dict]:
    """A collection's windows as a model reads them (its codec, density edges, known genres), spread
    evenly to at most ``max_windows``; and ``{"files", "kept", "skipped"}``."""
    from mmmgen.config import CodecConfig
    from mmmgen.data.corpus import spread
    from mmmgen.data.prepare import encode_file
    from mmmgen.text.encode import parts_to_text

    saved = settings.get("codec", {})
    codec = CodecConfig(**{f.name: saved[f.name] for f in fields(CodecConfig) if f.name in saved})
    codec = replace(codec, chords=False)  # the same windows for every model: the notes, without a chord track
    known, edges = set(settings.get("genre_labels", [])), settings.get("density_edges", [])
    windows, skipped = [], 0
    for path, label in files:
        result = encode_file(path, path.name, codec)
        skipped += bool(result.skipped)
        genre = label if label in known else V.OTHER_GENRE
        windows += [(tuple(w["ts"]), genre, w["parts"]) for w in result.windows]
    texts = [parts_to_text(ts, genre, parts, edges) for ts, genre, parts in spread(windows, max_windows)]
    return texts, {"files": len(files), "kept": len(files) - skipped, "skipped": skipped, "windows_total": len(windows)}


def evaluate_collections(models: list[str], sets: dict[str, list[tuple[Path, str]]], max_windows: int | None = 300,
                         batch_size: int = 8) -> dict:
    """``{"models": [...], "collections": {name: {"files", ..., "models": {model: likelihood()}}}}``."""
    from datasets import Dataset

    results: dict = {"models": list(models), "max_windows": max_windows, "collections": {}}
    for name in models:
        _, model, tokenizer, settings = _load_model(name)
        for collection, files in sets.items():
            texts, info = collection_texts(files, settings, max_windows)
            entry = results["collections"].setdefault(collection, {**info, "models": {}})
            if not texts:
                log.warning("%s: no window with notes", collection)
                continue
            entry["models"][name] = likelihood(model, tokenizer, Dataset.from_dict({"text": texts}), batch_size)
            log.info("%s on %s: %.3f bits per note (%d windows)", name, collection, entry["models"][name]["bits_per_note"], len(texts))
    return results


def format_collections(results: dict) -> str:
    """A Markdown table: one row per collection, bits per note for each model (and the change from the first)."""
    models = results["models"]
    head = ["collection", "files", "windows", *(f"`{m}` bits/note" for m in models)]
    if len(models) > 1:
        head += [f"change vs `{models[0]}`"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, entry in results["collections"].items():
        bits = [entry["models"].get(m, {}).get("bits_per_note", math.nan) for m in models]
        windows = max((entry["models"][m]["windows"] for m in entry["models"]), default=0)
        cuts = [entry["models"].get(m, {}).get("cut_windows", 0) for m in models]  # scored up to the model's context
        cells = [name, f"{entry['kept']}/{entry['files']}", f"{windows:,}",
                 *(f"{b:.3f}" + (f" ({c} cut)" if c else "") for b, c in zip(bits, cuts, strict=True))]
        if len(models) > 1:
            cells += [" / ".join(f"{100 * (b / bits[0] - 1):+.1f} %" for b in bits[1:])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(results: dict, out: str | Path) -> tuple[Path, Path]:
    """``out`` (JSON) and the table beside it (``.md``)."""
    path = write_json(results, out)
    table = Path(out).with_suffix(".md")
    env = results.get("environment", {})
    head = [f"# Held-out bits per note per collection (max {results['max_windows']} windows each)", ""]
    if env:
        hw = env.get("hardware", {})
        head += [f"`{results.get('command', '')}`", "",
                 f"{env.get('date')}, {hw.get('cpu')} ({hw.get('logical_cores')} cores, load {hw.get('load_avg_1_5_15')}), "
                 f"commit {env.get('git_commit')}, " + ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items()), "",
                 "A window longer than a model's context is scored up to it (`cut`).", ""]
    table.write_text("\n".join([*head, format_collections(results)]) + "\n")
    return path, table


def load_results(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
