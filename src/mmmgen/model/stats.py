"""Musical statistics of pieces and how much two sets of pieces overlap (``mmmgen evaluate``).

Statistics (Yang & Lerch 2018, "On the evaluation of generative models in music"), per piece, from
a list of notes ``(onset, duration, pitch, is_drum)`` with times in quarter notes:

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

import math
from dataclasses import dataclass

import numpy as np

LENGTH_CLASSES = np.array([4, 2, 1, 1 / 2, 1 / 4, 3, 3 / 2, 3 / 4, 3 / 8, 4 / 3, 2 / 3, 1 / 3])  # quarters (Yang & Lerch)
HISTOGRAM_FEATURES = ("pitch_class_histogram", "note_length_histogram")
SCALAR_FEATURES = ("pitch_range", "notes_per_bar", "inter_onset_interval", "polyphony")
FEATURES = ("pitch_class_histogram", "pitch_range", "notes_per_bar", "note_length_histogram", "inter_onset_interval", "polyphony")


# --- notes of a piece --------------------------------------------------------------------------
@dataclass(frozen=True)
class PieceNotes:
    """One piece for the statistics: rows ``(onset, duration, pitch, is_drum)``, times in quarter notes."""

    notes: np.ndarray
    n_bars: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "notes", np.asarray(self.notes, dtype=np.float64).reshape(-1, 4))


def piece_notes(piece, grid: int = 12) -> PieceNotes:
    """The notes of a decoded ``Piece`` (``text.decode.text_to_piece``)."""
    rows = [(start / grid, (end - start) / grid, pitch, float(track.is_drum))
            for track in piece.tracks for pitch, start, end, _ in track.notes]
    return PieceNotes(rows, max(piece.n_bars, 1))


def text_notes(text: str, grid: int = 12, n_bars: int | None = None) -> PieceNotes:
    """The notes of MMM text (decoded leniently); ``n_bars`` defaults to the text's bar count."""
    from mmmgen.text.decode import text_to_piece

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


