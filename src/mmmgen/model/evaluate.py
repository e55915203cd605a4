"""How good a trained model is: likelihood, validity and musical statistics (``mmmgen evaluate``).

``evaluate(cfg) -> dict`` measures a run folder against reference windows: the test split of a
prepared dataset, or a folder of MIDI files encoded with the run's own codec settings
(``RUN/mmmgen.json``: grid, bars, density edges; genre ``OTHER`` unless ``--genres`` names one the
model knows).

* **Likelihood**: the reference windows are packed whole into blocks of the model's context, each
  window restarting its position ids, and scored by ``trainer.evaluate_blocks``: exactly the
  evaluation run during training. Reported per token (and as perplexity) and per note (a note is a
  ``NOTE_ON`` word): ``loss_per_note`` in nats, ``bits_per_note`` = nats / ln 2.
* **Validity**: ``--samples`` pieces of ``--tracks`` tracks from the ``Generator``; the share of
  the tracks asked for that decode strictly with the requested bar count and at least one note.
  Decoding is constrained, so anything below 1.0 is a bug; failures are counted by reason.
* **Statistics** (Yang & Lerch 2018): six features per piece (pitch classes, pitch range, notes per
  bar, note lengths, inter-onset interval, polyphony) and how much the generated set's distributions
  overlap the reference set's (``mean_oa``); defined and explained in ``stats.py``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import sys
from collections import Counter
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from mmmgen.config import EvaluateConfig
from mmmgen.errors import MMMGenError
from mmmgen.model.stats import compare_sets, text_notes
from mmmgen.text import vocab as V

log = logging.getLogger(__name__)

EVALUATION_NAME = "evaluation.json"


class EvaluateError(MMMGenError):
    """Input ``mmmgen evaluate`` cannot use: no model, no test split, no readable MIDI, both or neither data source."""


# --- reference windows -------------------------------------------------------------------------
@dataclass
class Reference:
    """The windows evaluated: ``split`` (a ``datasets.Dataset`` with ``text``) for the likelihood,
    ``texts`` (without bar-fill variants) for the statistics, and where they came from."""

    split: object
    texts: list[str]
    info: dict


def dataset_reference(dataset_dir: str | Path, max_windows: int | None = None) -> Reference:
    """The test split of a prepared dataset (``mmmgen prepare``)."""
    from datasets import DatasetDict, load_from_disk

    path = Path(dataset_dir)
    if not path.is_dir():
        msg = f"dataset not found: {path}"
        raise EvaluateError(msg)
    try:
        dsd = load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        msg = f"not a prepared dataset (mmmgen prepare): {path}"
        raise EvaluateError(msg) from exc
    test = dsd.get("test") if isinstance(dsd, DatasetDict) else None
    if test is None or len(test) == 0:
        msg = f"the dataset {path} has no test split (prepare it with --test-size > 0, or evaluate MIDI files with --midi DIR)"
        raise EvaluateError(msg)
    if max_windows:
        test = test.select(range(min(max_windows, len(test))))
    fills = test["infill"] if "infill" in test.column_names else [False] * len(test)
    texts = [t for t, fill in zip(test["text"], fills, strict=True) if not fill]
    return Reference(test, texts, {"source": "dataset", "path": str(path), "windows": len(test)})


def midi_reference(midi_dir: str | Path, settings: dict, genres: str | Path | None = None,
                   max_windows: int | None = None) -> Reference:
    """Every window of a folder of MIDI files, encoded with a run's codec settings; bad files are counted."""
    from datasets import Dataset
    from tqdm.auto import tqdm

    from mmmgen.config import CodecConfig
    from mmmgen.data.prepare import encode_file, find_midi_files, read_genres_csv
    from mmmgen.text.encode import parts_to_text

    root = Path(midi_dir)
    if not root.is_dir():
        msg = f"MIDI folder not found: {root}"
        raise EvaluateError(msg)
    files = find_midi_files(root)
    saved = settings.get("codec", {})
    codec = CodecConfig(**{f.name: saved[f.name] for f in fields(CodecConfig) if f.name in saved})
    labels = read_genres_csv(genres) if genres else {}
    known, edges = set(settings.get("genre_labels", [])), settings.get("density_edges", [])
    texts, skipped, kept = [], Counter(), 0
    for path in tqdm(files, desc="encoding MIDI", unit="file", disable=None, file=sys.stderr):
        source = path.relative_to(root).as_posix()
        result = encode_file(path, source, codec)
        if result.skipped:
            skipped[result.skipped] += 1
            log.warning("skipped %s: %s", source, result.detail or result.skipped)
            continue
        kept += 1
        genre = labels.get(source, V.OTHER_GENRE)
        genre = genre if genre in known else V.OTHER_GENRE
        texts += [parts_to_text(tuple(w["ts"]), genre, w["parts"], edges) for w in result.windows]
        if max_windows and len(texts) >= max_windows:
            break
    if not texts:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(skipped.items()))
        msg = f"no readable MIDI file with notes under {root}: {len(files)} found, {sum(skipped.values())} skipped" + (f" ({reasons})" if reasons else "")
        raise EvaluateError(msg)
    texts = texts[:max_windows] if max_windows else texts
    info = {"source": "midi", "path": str(root), "windows": len(texts), "files_total": len(files),
            "files_kept": kept, "files_skipped": dict(skipped)}
    return Reference(Dataset.from_dict({"text": texts}), texts, info)


# --- likelihood --------------------------------------------------------------------------------
class _Progress:
    """A dataset that advances a progress bar as its items are read."""

    def __init__(self, data, bar):
        self.data, self.bar = data, bar

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        self.bar.update()
        return self.data[i]


def likelihood(model, tokenizer, split, batch_size: int = 8) -> dict:
    """Loss per token and per note of a split's ``text`` windows, as at evaluation during training."""
    from tqdm.auto import tqdm

    from mmmgen.model.batching import PackedBlocks, PackedCollator, pack_windows, tokenize_split
    from mmmgen.model.train import _quiet_packing_warning
    from mmmgen.model.trainer import evaluate_blocks, loss_metrics, note_on_ids

    _quiet_packing_warning()
    context = int(model.config.n_positions)
    tokens = tokenize_split(split, tokenizer)
    lengths = np.asarray(tokens["length"])
    n_unk, n_cut = int(np.sum(tokens["n_unk"])), int(np.sum(lengths > context))
    if n_unk:
        log.warning("%d words are unknown to the model's tokenizer (scored as [UNK])", n_unk)
    if n_cut:
        log.warning("%d windows are longer than the context of %d tokens and are cut", n_cut, context)
    blocks = pack_windows(lengths, context)
    with tqdm(total=len(blocks), desc="scoring", unit="block", disable=None, file=sys.stderr) as bar:
        data = _Progress(PackedBlocks(tokens, blocks, context), bar)
        sums = evaluate_blocks(model.eval(), data, PackedCollator(tokenizer.pad_token_id), batch_size, note_on_ids(tokenizer))
    metrics = loss_metrics(sums, "eval")
    return {
        "loss_per_token": metrics["eval_loss"],
        "perplexity": metrics["eval_perplexity"],
        "loss_per_note": metrics["eval_loss_per_note"],
        "bits_per_note": metrics["eval_loss_per_note"] / math.log(2),
        "tokens": int(sums[1]),
        "notes": int(sums[2]),
        "windows": len(lengths),
        "blocks": len(blocks),
        "cut_windows": n_cut,
        "unknown_words": n_unk,
    }


# --- validity ----------------------------------------------------------------------------------
def track_problem(header: str, track: str, n_bars: int, grid: int = 12) -> str | None:
    """Why a generated track is not valid (None when it is): strict decoding, bar count, notes."""
    from mmmgen.text.decode import MMMDecodeError, text_to_piece

    try:
        piece = text_to_piece(f"{header} {track}", grid, strict=True)
    except MMMDecodeError as exc:
        return f"does not parse: {str(exc).split(' at word')[0]}"
    words = track.split()
    if not piece.tracks and words[1:2] == [V.chord_track_inst()]:  # a chord track (a model trained with --chords)
        bars = words.count(V.BAR_START)
        return None if bars == n_bars else f"{bars} bars instead of {n_bars}"
    if len(piece.tracks) != 1:
        return "not one track"
    if piece.tracks[0].n_bars != n_bars:
        return f"{piece.tracks[0].n_bars} bars instead of {n_bars}"
    return None if piece.tracks[0].notes else "no notes"


def generate_pieces(generator, samples: int, tracks: int, n_bars: int, sampling=None, genre: str | None = None) -> tuple[list, dict]:
    """``samples`` pieces of ``tracks`` new tracks each (in ``genre``, else a known genre at random), and their validity.

    Returns ``(songs, validity)``: ``validity`` counts the tracks asked for, the valid ones
    (``track_problem``) and the failures by reason (a track the generator could not write counts).
    """
    from tqdm.auto import tqdm

    from mmmgen.generate.sampling import GenerationError, Sampling
    from mmmgen.generate.song import Song
    from mmmgen.text.decode import MMMDecodeError

    sampling = sampling or Sampling(seed=0)
    songs, failures, valid = [], Counter(), 0
    with tqdm(total=samples * tracks, desc="generating", unit="track", disable=None, file=sys.stderr) as bar:
        for i in range(samples):
            seed = None if sampling.seed is None else sampling.seed + i * tracks
            piece_genre = genre or (random.Random(seed).choice(generator.genres) if generator.genres else V.OTHER_GENRE)
            song = Song(genre=piece_genre, n_bars=n_bars)
            for t in range(tracks):
                try:
                    song = generator.add_track(song, new_instrument=t < len(generator.table.inst),
                                               sampling=replace(sampling, seed=None if seed is None else seed + t))
                    problem = track_problem(song.header, song.tracks[-1], n_bars, generator.grid)
                except (GenerationError, MMMDecodeError, AssertionError) as exc:  # AssertionError: the constraints failed
                    problem = f"not generated: {exc}"
                valid += problem is None
                if problem:
                    failures[problem] += 1
                bar.update()
            songs.append(song)
    total = samples * tracks
    return songs, {"pieces": samples, "tracks": total, "valid_tracks": valid,
                   "validity": valid / total if total else math.nan, "failures": dict(failures)}


def free_pieces(model, tokenizer, samples: int, tracks: int, n_bars: int, grid: int = 12, genres=None,
                temperature: float = 0.85, seed: int = 0, max_new_tokens: int = 1024) -> dict:
    """Validity of tracks written the tutorial's way: ``model.generate`` on the whole text so far,
    sampling until ``TRACK_END`` (or ``max_new_tokens``), without grammar constraints.

    Returns the same counts as ``generate_pieces``' validity.
    """
    import torch
    from tqdm.auto import tqdm

    from mmmgen.generate.song import Song

    eos = tokenizer.convert_tokens_to_ids(V.TRACK_END)
    context = model.config.n_positions
    device = next(model.parameters()).device
    failures, valid = Counter(), 0
    with tqdm(total=samples * tracks, desc="generating (unconstrained)", unit="track", disable=None, file=sys.stderr) as bar:
        for i in range(samples):
            genre = random.Random(seed + i).choice(genres) if genres else V.OTHER_GENRE
            header = text = Song(genre=genre, n_bars=n_bars).header
            torch.manual_seed(seed + i)
            for _ in range(tracks):
                ids = tokenizer(f"{text} {V.TRACK_START}", add_special_tokens=False, return_tensors="pt")["input_ids"].to(device)
                cap = min(max_new_tokens, context - ids.shape[1])
                problem = "no room left in the context" if cap <= 0 else None
                if problem is None:
                    with torch.inference_mode():
                        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=cap, do_sample=True,
                                             temperature=temperature, top_k=0, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id)
                    words = tokenizer.convert_ids_to_tokens(out[0, ids.shape[1]:].tolist())
                    track = " ".join([V.TRACK_START, *words])
                    if words and words[-1] == V.TRACK_END:
                        problem = track_problem(header, track, n_bars, grid)
                    else:
                        problem = f"no TRACK_END within {cap} words"
                        track += f" {V.TRACK_END}"
                    text = f"{text} {track}"
                valid += problem is None
                if problem:
                    failures[problem] += 1
                bar.update()
    total = samples * tracks
    return {"pieces": samples, "tracks": total, "valid_tracks": valid,
            "validity": valid / total if total else math.nan, "failures": dict(failures)}


# --- the whole evaluation ----------------------------------------------------------------------
def _load_model(model: str | None):
    from mmmgen.data.prepare import is_shipped_name
    from mmmgen.generate.sampling import GenerationError
    from mmmgen.model.run import RunError, find_run, load_run

    if model and model not in ("latest", "default") and not Path(model).is_dir() and not is_shipped_name(model):
        msg = f"model not found: {model}"
        raise EvaluateError(msg)
    try:
        run = find_run(model)
        return run, *load_run(run)
    except (GenerationError, RunError) as exc:
        raise EvaluateError(str(exc)) from exc


def _check_codec(dataset_dir: str, settings: dict) -> None:
    from mmmgen.data.prepare import DatasetError, load_report
    from mmmgen.model.finetune import codec_differences

    try:
        report = load_report(dataset_dir)
    except DatasetError:
        return
    changed = codec_differences(report, settings)  # grid, bars, density levels and edges
    if changed:
        log.warning("the dataset was prepared with other codec settings than the model's: %s", ", ".join(changed))


def evaluate(cfg: EvaluateConfig) -> dict:
    """Likelihood, validity and statistics of a run; writes ``cfg.out`` and, with ``cfg.write_card``,
    ``RUN/evaluation.json`` and the model card's ``## Evaluation`` section.

    Returns:
        ``model``, ``device``; ``data`` (``source``, ``path``, ``windows``; for MIDI also
        ``files_total``, ``files_kept``, ``files_skipped``); ``likelihood`` (``likelihood()``);
        with ``cfg.samples``: ``validity`` (``generate_pieces()``) and ``statistics``
        (``compare_sets()``: ``mean_oa``, ``features.<name>.oa`` ...); ``settings``.

    Raises:
        EvaluateError: no model, a dataset without a test split, no readable MIDI, both or neither of dataset/midi.
    """
    import torch

    from mmmgen.generate.sampling import Sampling
    from mmmgen.model.run import generator_for, run_genres

    if bool(cfg.dataset) == bool(cfg.midi):
        msg = "pass exactly one of --dataset D (its test split is evaluated) or --midi DIR (a folder of MIDI files)"
        raise EvaluateError(msg)
    run, model, tokenizer, settings = _load_model(cfg.model)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    codec = settings.get("codec", {})
    grid = codec.get("grid", 12)
    if cfg.dataset:
        reference = dataset_reference(cfg.dataset, cfg.max_windows)
        _check_codec(cfg.dataset, settings)
    else:
        reference = midi_reference(cfg.midi, settings, cfg.genres, cfg.max_windows)
    results = {"model": str(run), "device": str(device), "data": reference.info,
               "likelihood": likelihood(model, tokenizer, reference.split, cfg.batch_size)}
    n_bars = cfg.bars or codec.get("bars", 8)
    if cfg.samples:
        generator = generator_for(model, tokenizer, settings)
        sampling = Sampling(temperature=cfg.temperature, seed=cfg.seed)
        genre = V.normalize_genre(cfg.genre) if cfg.genre else None
        if genre and genre not in (generator.genres or []):
            msg = f"--genre {cfg.genre}: the model knows {', '.join(generator.genres or [V.OTHER_GENRE])}"
            raise EvaluateError(msg)
        songs, results["validity"] = generate_pieces(generator, cfg.samples, cfg.tracks, n_bars, sampling, genre)
        generated = [text_notes(s.text, grid, s.n_bars) for s in songs]
        results["statistics"] = compare_sets(generated, [text_notes(t, grid) for t in reference.texts])
    if cfg.free_samples:
        results["free_validity"] = free_pieces(model, tokenizer, cfg.free_samples, cfg.tracks, n_bars, grid,
                                               run_genres(settings), cfg.temperature, cfg.seed)
    results["settings"] = {"genre": cfg.genre, "samples": cfg.samples, "free_samples": cfg.free_samples, "tracks": cfg.tracks, "bars": n_bars, "temperature": cfg.temperature,
                           "seed": cfg.seed, "batch_size": cfg.batch_size, "max_windows": cfg.max_windows}
    if cfg.out:
        write_json(results, cfg.out)
    if cfg.write_card:
        write_card(run, results)
    return results


# --- reports -----------------------------------------------------------------------------------
def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN / Infinity
    return value


def write_json(results: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(results), indent=2) + "\n")
    return path


def _num(x, fmt: str = ".4g") -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def _rows(results: dict) -> tuple[list[tuple[str, str]], list[tuple[str, str, str, str]]]:
    """``(metric, value)`` rows and ``(feature, OA, generated, reference)`` rows."""
    lk, rows = results["likelihood"], []
    rows += [("loss per token (nats)", _num(lk["loss_per_token"], ".4f")), ("perplexity", _num(lk["perplexity"], ".3f")),
             ("loss per note (nats)", _num(lk["loss_per_note"], ".4f")), ("bits per note", _num(lk["bits_per_note"], ".4f")),
             ("tokens / notes / windows", f"{lk['tokens']:,} / {lk['notes']:,} / {lk['windows']:,}")]
    if "validity" in results:
        v = results["validity"]
        rows.append(("valid tracks", f"{v['valid_tracks']}/{v['tracks']} ({_num(100 * v['validity'], '.1f')}%)"))
    if "free_validity" in results:
        v = results["free_validity"]
        rows.append(("valid tracks, unconstrained (tutorial's way)",
                     f"{v['valid_tracks']}/{v['tracks']} ({_num(100 * v['validity'], '.1f')}%)"))
    features = []
    if "statistics" in results:
        for name, f in results["statistics"]["features"].items():
            cells = [f"{_num(s['mean'], '.3g')} ± {_num(s['std'], '.2g')}" if "mean" in s else "(12 bins)"
                     for s in (f["generated"], f["reference"])]
            features.append((name, _num(f["oa"], ".3f"), *cells))
        features.append(("mean", _num(results["statistics"]["mean_oa"], ".3f"), "", ""))
    return rows, features


def _source(results: dict, quote: str = "") -> str:
    d = results["data"]
    kind = "test split" if d["source"] == "dataset" else f"MIDI files, {d['files_kept']} of {d['files_total']} read"
    return f"{quote}{d['path']}{quote} ({kind}, {d['windows']:,} windows)"


def format_table(results: dict) -> str:
    """The results as plain text for the terminal."""
    rows, features = _rows(results)
    lines = [f"model {results['model']} on {_source(results)}, device {results['device']}"]
    lines += [f"  {k:<26} {v}" for k, v in rows]
    if features:
        s = results["statistics"]
        lines.append(f"statistics: overlapping area (OA, 1 = same distribution) of {s['generated_pieces']} generated "
                     f"vs {s['reference_pieces']} reference pieces")
        lines.append(f"  {'feature':<24} {'OA':>6}  {'generated':<18} reference")
        lines += [f"  {n:<24} {oa:>6}  {g:<18} {r}".rstrip() for n, oa, g, r in features]
    if results.get("validity", {}).get("failures"):
        lines.append("invalid tracks: " + ", ".join(f"{k} ({n})" for k, n in results["validity"]["failures"].items()))
    return "\n".join(lines)


def format_markdown(results: dict) -> str:
    """The results as Markdown tables (the model card's ``## Evaluation`` section)."""
    rows, features = _rows(results)
    out = [f"Measured by `mmmgen evaluate` on {_source(results, '`')}.", "", "| metric | value |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in rows]
    if features:
        s = results["statistics"]
        out += ["", f"Musical statistics (Yang & Lerch 2018): overlapping area (OA) of the feature distributions of "
                f"{s['generated_pieces']} generated pieces and {s['reference_pieces']} reference windows (1 = same distribution).",
                "", "| feature | OA | generated | reference |", "|---|---|---|---|"]
        out += [f"| {n} | {oa} | {g} | {r} |" for n, oa, g, r in features]
    return "\n".join(out)


def write_card(run_dir: str | Path, results: dict) -> Path:
    """Write ``RUN/evaluation.json`` and put the tables into ``RUN/README.md`` under ``## Evaluation``.

    An existing ``## Evaluation`` section is replaced; a new one goes before ``## Use`` (or at the end).
    """
    run = Path(run_dir)
    write_json(results, run / EVALUATION_NAME)
    return put_section(run / "README.md", "Evaluation", format_markdown(results))


def put_section(card: str | Path, title: str, body: str) -> Path:
    """Replace the ``## title`` section of a markdown file, or add it before ``## Use`` (or at the end)."""
    card = Path(card)
    text = card.read_text() if card.is_file() else f"# {card.parent.name}\n"
    section = f"## {title}\n\n{body.strip()}\n\n"
    existing = re.compile(rf"^## {re.escape(title)}[^\n]*\n.*?(?=^## |\Z)", re.S | re.M)
    if existing.search(text):
        text = existing.sub(lambda _: section, text, count=1)
    elif re.search(r"^## Use\b", text, re.M):
        text = re.sub(r"^(?=## Use\b)", lambda _: section, text, count=1, flags=re.M)
    else:
        text = text.rstrip() + "\n\n" + section
    card.write_text(text.rstrip() + "\n")
    return card
