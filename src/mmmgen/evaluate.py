"""How good a trained model is: likelihood, validity and musical statistics (``mmmgen evaluate``).

``evaluate(cfg) -> dict`` measures a run folder against reference windows: the test split of a
prepared dataset, or a folder of MIDI files encoded with the run's own codec settings
(``RUN/mmmgen.json``: grid, bars, density edges; genre ``OTHER`` unless ``--genres`` names one the
model knows).

* **Likelihood**: the reference windows are packed whole into blocks of the model's context, each
  window restarting its position ids, and scored by ``train.evaluate_blocks``: exactly the
  evaluation run during training. Reported per token (and as perplexity) and per note (a note is a
  ``NOTE_ON`` word): ``loss_per_note`` in nats, ``bits_per_note`` = nats / ln 2.
* **Validity**: ``--samples`` pieces of ``--tracks`` tracks from the ``Generator``; the share of
  the tracks asked for that decode strictly with the requested bar count and at least one note.
  Decoding is constrained, so anything below 1.0 is a bug; failures are counted by reason.
* **Statistics** (Yang & Lerch 2018, "On the evaluation of generative models in music"), per piece,
  from a list of notes ``(onset, duration, pitch, is_drum)`` with times in quarter notes:

  =======================  ==================================================  ============
  feature                  per piece                                           notes used
  =======================  ==================================================  ============
  pitch_class_histogram    share of notes in each of the 12 pitch classes      pitched
  pitch_range              highest minus lowest pitch (semitones)              pitched
  notes_per_bar            notes / bars                                        all
  note_length_histogram    share of notes in the paper's 12 length classes     pitched
                           (whole ... eighth triplet; nearest in log scale)
  inter_onset_interval     mean time between successive distinct onsets       all
  polyphony                mean count of sounding notes over the time at       pitched
                           least one sounds (as in MusPy)
  =======================  ==================================================  ============

  Drums are left out of the pitch and length features. The paper compares the distributions of
  intra-set and inter-set pairwise distances; that overlap is not 1 for two identical sets, so we
  compare the feature distributions directly. Scalar features: one Gaussian kernel density per
  set (Silverman's rule-of-thumb bandwidth, at least 1% of the pooled range), both on one grid,
  and ``OA = sum(min(p_generated, p_reference))``. Histogram features: the mean per-piece
  histogram of each set (each piece weighs the same) and ``OA = sum(min(h_generated,
  h_reference))``. OA is in [0, 1]: 1 for identical sets, 0 for disjoint ones; ``mean_oa`` averages
  the features that both sets have.
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

from mmmgen import vocab as V
from mmmgen.config import EvaluateConfig
from mmmgen.errors import MMMGenError

log = logging.getLogger(__name__)

EVALUATION_NAME = "evaluation.json"
LENGTH_CLASSES = np.array([4, 2, 1, 1 / 2, 1 / 4, 3, 3 / 2, 3 / 4, 3 / 8, 4 / 3, 2 / 3, 1 / 3])  # quarters (Yang & Lerch)
HISTOGRAM_FEATURES = ("pitch_class_histogram", "note_length_histogram")
SCALAR_FEATURES = ("pitch_range", "notes_per_bar", "inter_onset_interval", "polyphony")
FEATURES = ("pitch_class_histogram", "pitch_range", "notes_per_bar", "note_length_histogram", "inter_onset_interval", "polyphony")


class EvaluateError(MMMGenError):
    """Input ``mmmgen evaluate`` cannot use: no model, no test split, no readable MIDI, both or neither data source."""


# --- notes of a piece --------------------------------------------------------------------------
@dataclass(frozen=True)
class PieceNotes:
    """One piece for the statistics: rows ``(onset, duration, pitch, is_drum)``, times in quarter notes."""

    notes: np.ndarray
    n_bars: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "notes", np.asarray(self.notes, dtype=np.float64).reshape(-1, 4))


def piece_notes(piece, grid: int = 12) -> PieceNotes:
    """The notes of a decoded ``Piece`` (``decoder.text_to_piece``)."""
    rows = [(start / grid, (end - start) / grid, pitch, float(track.is_drum))
            for track in piece.tracks for pitch, start, end, _ in track.notes]
    return PieceNotes(rows, max(piece.n_bars, 1))


def text_notes(text: str, grid: int = 12, n_bars: int | None = None) -> PieceNotes:
    """The notes of MMM text (decoded leniently); ``n_bars`` defaults to the text's bar count."""
    from mmmgen.decoder import text_to_piece

    piece = piece_notes(text_to_piece(text, grid), grid)
    return PieceNotes(piece.notes, n_bars) if n_bars else piece


# --- features ----------------------------------------------------------------------------------
def _pitched(notes: np.ndarray) -> np.ndarray:
    return notes[notes[:, 3] == 0]


def pitch_class_histogram(notes: np.ndarray) -> np.ndarray | None:
    """Share of pitched notes in each pitch class C..B; None without pitched notes."""
    pitches = _pitched(notes)[:, 2].astype(int)
    return np.bincount(pitches % 12, minlength=12) / len(pitches) if len(pitches) else None


def pitch_range(notes: np.ndarray) -> float:
    """Highest minus lowest pitched note in semitones (NaN without pitched notes)."""
    pitches = _pitched(notes)[:, 2]
    return float(pitches.max() - pitches.min()) if len(pitches) else math.nan


def notes_per_bar(notes: np.ndarray, n_bars: int) -> float:
    return len(notes) / max(n_bars, 1)


def note_length_histogram(notes: np.ndarray) -> np.ndarray | None:
    """Share of pitched notes in each of ``LENGTH_CLASSES`` (the nearest in log scale); None without."""
    lengths = _pitched(notes)[:, 1]
    if not len(lengths):
        return None
    nearest = np.abs(np.log2(lengths)[:, None] - np.log2(LENGTH_CLASSES)[None]).argmin(1)
    return np.bincount(nearest, minlength=len(LENGTH_CLASSES)) / len(lengths)


def inter_onset_interval(notes: np.ndarray) -> float:
    """Mean time between successive distinct onsets, in quarters (NaN with fewer than two)."""
    onsets = np.unique(notes[:, 0])
    return float(np.diff(onsets).mean()) if len(onsets) > 1 else math.nan


def polyphony(notes: np.ndarray) -> float:
    """Mean count of sounding pitched notes over the time at least one sounds (NaN without)."""
    pitched = _pitched(notes)
    if not len(pitched):
        return math.nan
    times = np.concatenate([pitched[:, 0], pitched[:, 0] + pitched[:, 1]])
    steps = np.concatenate([np.ones(len(pitched)), -np.ones(len(pitched))])
    order = np.argsort(times, kind="stable")
    sounding = np.cumsum(steps[order])[:-1]  # notes sounding between one boundary and the next
    spans = np.diff(times[order])
    covered = spans[sounding > 0].sum()
    return float((sounding * spans).sum() / covered) if covered > 0 else math.nan


def piece_features(piece: PieceNotes) -> dict:
    """Every feature of one piece (a 12-bin array or None for histograms, a float or NaN for scalars)."""
    n = piece.notes
    return {
        "pitch_class_histogram": pitch_class_histogram(n),
        "pitch_range": pitch_range(n),
        "notes_per_bar": notes_per_bar(n, piece.n_bars),
        "note_length_histogram": note_length_histogram(n),
        "inter_onset_interval": inter_onset_interval(n),
        "polyphony": polyphony(n),
    }


# --- overlapping areas -------------------------------------------------------------------------
def _silverman(x: np.ndarray) -> float:
    if len(x) < 2:
        return 0.0
    spread = float(np.std(x, ddof=1))
    q25, q75 = np.percentile(x, [25, 75])
    if q75 > q25:
        spread = min(spread, (q75 - q25) / 1.34)
    return 0.9 * spread * len(x) ** -0.2


def _kde(x: np.ndarray, bandwidth: float, grid: np.ndarray, chunk: int = 256) -> np.ndarray:
    """A Gaussian kernel density on ``grid``, normalized to sum to 1 over the grid points."""
    density = np.zeros_like(grid)
    for start in range(0, len(x), chunk):
        z = (grid[:, None] - x[None, start : start + chunk]) / bandwidth
        density += np.exp(-0.5 * z * z).sum(1)
    return density / density.sum()


def kde_overlap(a, b, points: int = 4096) -> float:
    """Overlapping area of the Gaussian kernel densities of two samples (NaN if one is empty)."""
    a, b = (np.asarray(x, dtype=np.float64) for x in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not len(a) or not len(b):
        return math.nan
    pooled = np.concatenate([a, b])
    span = float(np.ptp(pooled))
    floor = 0.01 * span if span > 0 else 1e-3 * max(1.0, abs(float(pooled[0])))
    ha, hb = max(_silverman(a), floor), max(_silverman(b), floor)
    width = 6 * max(ha, hb)
    grid = np.linspace(pooled.min() - width, pooled.max() + width, points)
    return float(np.clip(np.minimum(_kde(a, ha, grid), _kde(b, hb, grid)).sum(), 0.0, 1.0))


def histogram_overlap(a, b) -> float:
    """Overlap of the mean normalized histograms of two sets (None entries skipped; NaN if one is empty)."""
    a, b = [h for h in a if h is not None], [h for h in b if h is not None]
    if not a or not b:
        return math.nan
    return float(np.clip(np.minimum(np.mean(a, 0), np.mean(b, 0)).sum(), 0.0, 1.0))


def _summary(values: list, histogram: bool) -> dict:
    if histogram:
        kept = [h for h in values if h is not None]
        return {"pieces": len(kept), "histogram": np.mean(kept, 0).round(4).tolist() if kept else None}
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    return {"pieces": len(x), "mean": float(x.mean()) if len(x) else math.nan,
            "std": float(x.std()) if len(x) else math.nan}


def compare_sets(generated: list[PieceNotes], reference: list[PieceNotes]) -> dict:
    """OA per feature of two sets of pieces, each set's summary, and the mean OA."""
    gen = [piece_features(p) for p in generated]
    ref = [piece_features(p) for p in reference]
    out = {}
    for name in FEATURES:
        a, b = [f[name] for f in gen], [f[name] for f in ref]
        histogram = name in HISTOGRAM_FEATURES
        oa = histogram_overlap(a, b) if histogram else kde_overlap(a, b)
        out[name] = {"oa": oa, "generated": _summary(a, histogram), "reference": _summary(b, histogram)}
    found = [f["oa"] for f in out.values() if math.isfinite(f["oa"])]
    return {"generated_pieces": len(generated), "reference_pieces": len(reference),
            "mean_oa": float(np.mean(found)) if found else math.nan, "features": out}


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

    from mmmgen.codec import parts_to_text
    from mmmgen.config import CodecConfig
    from mmmgen.data import encode_file, find_midi_files, read_genres_csv

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

    from mmmgen.train import (
        PackedBlocks,
        PackedCollator,
        _quiet_packing_warning,
        evaluate_blocks,
        loss_metrics,
        note_on_ids,
        pack_windows,
        tokenize_split,
    )

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
    from mmmgen.decoder import MMMDecodeError, text_to_piece

    try:
        piece = text_to_piece(f"{header} {track}", grid, strict=True)
    except MMMDecodeError as exc:
        return f"does not parse: {str(exc).split(' at word')[0]}"
    if len(piece.tracks) != 1:
        return "not one track"
    if piece.tracks[0].n_bars != n_bars:
        return f"{piece.tracks[0].n_bars} bars instead of {n_bars}"
    return None if piece.tracks[0].notes else "no notes"


def generate_pieces(generator, samples: int, tracks: int, n_bars: int, sampling=None) -> tuple[list, dict]:
    """``samples`` pieces of ``tracks`` new tracks each, and their validity.

    Returns ``(songs, validity)``: ``validity`` counts the tracks asked for, the valid ones
    (``track_problem``) and the failures by reason (a track the generator could not write counts).
    """
    from tqdm.auto import tqdm

    from mmmgen.decoder import MMMDecodeError
    from mmmgen.generate import GenerationError, Sampling, Song

    sampling = sampling or Sampling(seed=0)
    songs, failures, valid = [], Counter(), 0
    with tqdm(total=samples * tracks, desc="generating", unit="track", disable=None, file=sys.stderr) as bar:
        for i in range(samples):
            seed = None if sampling.seed is None else sampling.seed + i * tracks
            genre = random.Random(seed).choice(generator.genres) if generator.genres else V.OTHER_GENRE
            song = Song(genre=genre, n_bars=n_bars)
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

    from mmmgen.generate import Song

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
    from mmmgen.generate import GenerationError, find_run
    from mmmgen.model import RunError, load_run

    if model and model != "latest" and not Path(model).is_dir():
        msg = f"model not found: {model}"
        raise EvaluateError(msg)
    try:
        run = find_run(model)
        return run, *load_run(run)
    except (GenerationError, RunError) as exc:
        raise EvaluateError(str(exc)) from exc


def _check_codec(dataset_dir: str, codec: dict) -> None:
    from mmmgen.data import DatasetError, load_report

    try:
        theirs = load_report(dataset_dir).get("codec", {})
    except DatasetError:
        return
    changed = [f"{k} {theirs[k]} (model: {codec[k]})" for k in ("grid", "bars") if k in theirs and k in codec and theirs[k] != codec[k]]
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

    from mmmgen.generate import Sampling, generator_for, run_genres

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
        _check_codec(cfg.dataset, codec)
    else:
        reference = midi_reference(cfg.midi, settings, cfg.genres, cfg.max_windows)
    results = {"model": str(run), "device": str(device), "data": reference.info,
               "likelihood": likelihood(model, tokenizer, reference.split, cfg.batch_size)}
    n_bars = cfg.bars or codec.get("bars", 8)
    if cfg.samples:
        generator = generator_for(model, tokenizer, settings)
        sampling = Sampling(temperature=cfg.temperature, seed=cfg.seed)
        songs, results["validity"] = generate_pieces(generator, cfg.samples, cfg.tracks, n_bars, sampling)
        generated = [text_notes(s.text, grid, s.n_bars) for s in songs]
        results["statistics"] = compare_sets(generated, [text_notes(t, grid) for t in reference.texts])
    if cfg.free_samples:
        results["free_validity"] = free_pieces(model, tokenizer, cfg.free_samples, cfg.tracks, n_bars, grid,
                                               run_genres(settings), cfg.temperature, cfg.seed)
    results["settings"] = {"samples": cfg.samples, "free_samples": cfg.free_samples, "tracks": cfg.tracks, "bars": n_bars, "temperature": cfg.temperature,
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
