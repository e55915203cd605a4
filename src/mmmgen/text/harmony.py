"""Chord reading: the chords of any score, as ``ChordSpan``\\ s in beats (quarter notes).

``read_chords(score)`` is a pure function, vectorised with numpy (a few ms per file):

1. Every pitched note (drums ignored) goes on a grid of ``GRID`` steps per quarter: a piano roll,
   whose pitch classes per step are the chroma and whose lowest sounding pitch is the bass.
   Steps on a bar line or a beat weigh more (metre weighting), so passing tones between beats
   count less than the notes that sound on them.
2. The bars follow the score's time signatures (4/4 when it has none; a meter change in mid-bar
   leaves a short bar); a bar's beats are quarters (halves in x/2; dotted quarters in 6/8, 9/8,
   12/8). Each bar is read at three resolutions: the whole bar, two halves (an even number of
   beats, 4 or more) and every beat.
3. Each segment's chroma is matched against every chord of the vocabulary (12 roots x the 13
   qualities of ``text/chords.py``): the share of the weight on chord tones, less a penalty per
   chord tone that does not sound (more for the root), plus a bonus when the bass is the root
   (or another chord tone), less a small prior against the rarer qualities, plus a small key
   prior (the piece's Krumhansl-Kessler key: chords whose triad is in it, more for I, IV, V).
   A four-note quality wins only when its fourth tone sounds.
4. Per bar the coarsest resolution whose fit is within ``COARSER`` of the best one is kept, so
   the harmonic rhythm follows the music (a chord per bar in a waltz, per beat in a chorale).
5. A Viterbi pass over the kept segments, with a cost per chord change, smooths the choice (an
   ambiguous segment takes its neighbour's chord). Consecutive equal chords are merged.
6. The bass note is named (``C:maj/E``) when one chord tone other than the root is the lowest
   note for most of the segment. ``N`` (no chord) is a silent bar; a rest inside a bar holds the chord.
7. A melody alone (monophonic music) has no bass to read and few chord tones per segment: its
   lowest note does not count as a bass and the key's I, IV and V weigh more.

``chords_to_csv`` / ``chords_from_csv`` write and read the CSV form
(``start_beat,end_beat,start_s,end_s,chord``; seconds follow the score's tempo map).
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
from fractions import Fraction
from functools import lru_cache

import numpy as np

from mmmgen.text.chords import (
    NO_CHORD,
    NO_CHORD_LABEL,
    NOTE_NAMES,
    QUALITIES,
    Chord,
    ChordError,
    ChordSpan,
    parse_chord,
)
from mmmgen.text.keys import key_of

GRID = 4  # steps per quarter note (sixteenths): chroma resolution
RESOLUTIONS = ("auto", "bar", "half", "beat")
MAX_STEPS = 2**16  # read at most 16,384 quarter notes (over 2 hours at 120 bpm): bounds the piano roll's memory
_LEVELS = ("bar", "half", "beat")  # coarse to fine
STEP_WEIGHT, BEAT_WEIGHT, BAR_WEIGHT = 1.0, 2.0, 3.0  # metre weighting of the step at a beat / bar start
MISSING = 0.25  # score lost per chord tone that does not sound
ROOT_MISSING = 0.15  # and again when it is the root
PRESENT = 0.08  # a pitch class sounds when it fills this share of the segment (metre-weighted)
BASS_ROOT, BASS_TONE = 0.25, 0.08  # bonus times the bass's share on the root / on any chord tone
PRIOR = {"maj": 0.0, "min": 0.0, "7": 0.06, "maj7": 0.07, "min7": 0.07, "6": 0.09, "min6": 0.09,
         "sus2": 0.08, "sus4": 0.07, "dim": 0.06, "aug": 0.08, "dim7": 0.08, "hdim7": 0.06}
COARSER = 0.08  # a coarser segmentation is kept when its fit is within this of the best
CHANGE = 0.15  # Viterbi cost of a chord change (score units x beats)
CANDIDATES = 4  # the Viterbi pass chooses among the chords that are this good for some segment
BASS_SHARE = 0.5  # a bass note is named when it has this share of the segment's bass (see _segment_bass)
BASS_MIN = 0.1  # the lowest pitch that sounds this share of a segment is its bass (half the bass weight)
KEY_FIT, PRIMARY = 0.03, 0.03  # bonus for chords within the piece's key, and more for its I, IV and V
# a melody alone (a second note sounds under MONOPHONIC of the time) has no bass and much less harmony:
# its lowest note is not a bass, and the key's I, IV and V are the likely chords
MONOPHONIC, MELODY_KEY_FIT, MELODY_PRIMARY = 0.1, 0.05, 0.2
_SCALES = ((0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10, 11))  # major; minor natural + harmonic (its V is major)


@lru_cache(maxsize=1)
def vocabulary_chords() -> tuple[Chord, ...]:
    """The reader's chords: no chord first, then 12 roots x the 13 qualities (root position)."""
    return (NO_CHORD, *(Chord(root, quality) for root in range(12) for quality in QUALITIES))


def _per_chord(values: np.ndarray) -> np.ndarray:
    """Sums of ``values`` (n, 12) over each chord's tones, (n, 12 roots x 13 qualities) in the vocabulary's
    order: shifted views of the doubled row, elementwise (no BLAS call: it costs threads on small matrices)."""
    doubled = np.concatenate([values, values], axis=1)
    sums = []
    for steps in QUALITIES.values():
        acc = doubled[:, steps[0]:steps[0] + 12] + doubled[:, steps[1]:steps[1] + 12]
        for step in steps[2:]:
            acc += doubled[:, step:step + 12]
        sums.append(acc)
    return np.stack(sums, axis=2).reshape(len(values), -1)


# --- the score on a grid -------------------------------------------------------------------------
def _on_grid(score):
    """The score in ticks or quarters (seconds are converted) and its ticks per quarter (1 in quarters)."""
    kind = type(score).__name__
    if kind == "ScoreSecond":
        score, kind = score.to("tick"), "ScoreTick"
    return score, 1 if kind == "ScoreQuarter" else score.tpq


def _pitched_notes(score, tpq: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pitch, start step and end step of every pitched note (drums left out; nothing past ``MAX_STEPS``)."""
    arrays = [t.notes.numpy() for t in score.tracks if not t.is_drum and len(t.notes)]
    if not arrays:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    time = np.concatenate([a["time"] for a in arrays]).astype(np.float64)
    end = time + np.concatenate([a["duration"] for a in arrays])
    pitch = np.concatenate([a["pitch"] for a in arrays]).astype(np.int64)
    start = np.rint(time * GRID / tpq).astype(np.int64)
    stop = np.maximum(np.rint(end * GRID / tpq).astype(np.int64), start + 1)
    keep = (start >= 0) & (start < MAX_STEPS) & (pitch >= 0) & (pitch < 128)
    return pitch[keep], start[keep], np.minimum(stop[keep], MAX_STEPS)


def _beat_steps(numerator: int, denominator: int) -> int:
    """Grid steps of one beat: dotted quarters in 6/8 9/8 12/8 (and 3/8), quarters in other x/8, the denominator's note otherwise."""
    unit = 4 * GRID / denominator
    if denominator >= 8 and numerator % 3 == 0:
        return max(round(3 * unit), 1)
    return max(round(unit if denominator <= 4 else GRID), 1)


def bar_lines(score, tpq: int, end_step: int) -> list[tuple[int, int, int]]:
    """``(start_step, end_step, beat_steps)`` of every bar up to ``end_step`` (``GRID`` steps per quarter).

    No time signature means 4/4 (as the encoder reads it); a meter change in mid-bar ends the bar there.
    """
    changes: dict[int, tuple[int, int]] = {}
    for ts in sorted(score.time_signatures, key=lambda ts: ts.time):
        if ts.numerator > 0 and ts.denominator > 0:
            changes[round(ts.time * GRID / tpq)] = (ts.numerator, ts.denominator)
    changes.setdefault(0, (4, 4))
    points = sorted(changes.items())
    bars: list[tuple[int, int, int]] = []
    for i, (at, (num, den)) in enumerate(points):
        last = i + 1 == len(points)
        stop = max(end_step, at + 1) if last else points[i + 1][0]
        length = max(round(num * 4 * GRID / den), 1)
        beat = min(_beat_steps(num, den), length)
        bars += [(b, b + length if last else min(b + length, stop), beat) for b in range(at, stop, length)]
    return bars


def _roll_features(pitch, start, stop, n_steps: int, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Metre-weighted chroma (rows 0-11), lowest note (rows 12-23) and weight (row 24) per step, (25, n_steps),
    and the piano roll (pitches from a C up, n_steps) of the octaves the notes use."""
    low = int(pitch.min()) // 12 * 12
    span = (int(pitch.max()) - low) // 12 * 12 + 12
    rows, size = pitch - low, span * (n_steps + 1)
    diff = np.bincount(rows * (n_steps + 1) + start, minlength=size).astype(np.int32)
    diff -= np.bincount(rows * (n_steps + 1) + np.minimum(stop, n_steps), minlength=size).astype(np.int32)
    roll = np.cumsum(diff.reshape(span, n_steps + 1)[:, :n_steps], axis=1) > 0
    features = np.zeros((25, n_steps))
    features[24] = weights
    features[:12] = roll.reshape(span // 12, 12, n_steps).sum(axis=0) * weights
    cols = np.flatnonzero(roll.any(axis=0))
    features[12 + np.argmax(roll[:, cols], axis=0) % 12, cols] = weights[cols]
    return features, roll


def _segment_bass(step_bass: np.ndarray, per_pitch: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Each segment's bass, (n, 12): half the share of time each pitch class is the lowest note, half the
    lowest pitch that sounds ``BASS_MIN`` of the segment (the low note under an arpeggio or a broken chord).
    ``per_pitch`` (n, pitches from a C up): each pitch's metre-weighted time in the segment."""
    sounding = per_pitch >= BASS_MIN * length[:, None]
    lowest = np.zeros((len(per_pitch), 12))
    has = sounding.any(axis=1)
    lowest[np.flatnonzero(has), np.argmax(sounding[has], axis=1) % 12] = 0.5
    total = step_bass.sum(axis=1, keepdims=True)
    return 0.5 * step_bass / np.where(total > 0, total, 1.0) + lowest


def _step_weights(bars: list[tuple[int, int, int]], n_steps: int) -> np.ndarray:
    """Metre weighting: ``BAR_WEIGHT`` on bar lines, ``BEAT_WEIGHT`` on beats, ``STEP_WEIGHT`` elsewhere."""
    weights = np.full(n_steps, STEP_WEIGHT)
    beats = np.array([s for b0, b1, beat in bars for s in range(b0, b1, beat)], np.int64)
    weights[beats[beats < n_steps]] = BEAT_WEIGHT
    starts = np.array([b0 for b0, _, _ in bars], np.int64)
    weights[starts[starts < n_steps]] = BAR_WEIGHT
    return weights


# --- segments: each bar read whole, in halves and by beats ------------------------------------------
@lru_cache(maxsize=64)
def _bar_segments(length: int, beat: int) -> np.ndarray:
    """The candidate segments of one bar, (n, 3): start and end step from the bar line, level (0 bar, 1 half, 2 beat)."""
    beats = list(range(0, length, beat))
    rows = [(0, length, 0)]
    if len(beats) >= 4 and len(beats) % 2 == 0:
        middle = beats[len(beats) // 2]
        rows += [(0, middle, 1), (middle, length, 1)]
    if len(beats) >= 2:
        rows += [(s, min(s + beat, length), 2) for s in beats]
    table = np.array(rows, np.int64)
    table.setflags(write=False)
    return table


def _segments(bars: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every candidate segment: start step, end step, bar index, level (0 bar, 1 half, 2 beat); one set of
    numpy calls per run of equal bars."""
    parts, index = [], 0
    for (length, beat), run in itertools.groupby(bars, key=lambda b: (b[1] - b[0], b[2])):
        starts = np.array([b[0] for b in run], np.int64)
        table = _bar_segments(length, beat)
        rows = np.empty((len(starts), len(table), 4), np.int64)
        rows[:, :, :2] = table[None, :, :2] + starts[:, None, None]
        rows[:, :, 2] = np.arange(index, index + len(starts))[:, None]
        rows[:, :, 3] = table[None, :, 2]
        parts.append(rows.reshape(-1, 4))
        index += len(starts)
    table = np.concatenate(parts)
    return table[:, 0], table[:, 1], table[:, 2], table[:, 3]


def _sums(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sums of ``values`` (rows, n_steps) over each ``[lo, hi)``: (n_segments, rows)."""
    cum = np.zeros((values.shape[0], values.shape[1] + 1))
    np.cumsum(values, axis=1, out=cum[:, 1:])
    return (cum[:, hi] - cum[:, lo]).T


@lru_cache(maxsize=1)
def _constant_terms() -> np.ndarray:
    """The part of every chord's score that does not depend on the music: -MISSING * size - ROOT_MISSING - prior."""
    sizes = np.tile([len(steps) for steps in QUALITIES.values()], 12)
    terms = -MISSING * sizes - ROOT_MISSING - np.tile([PRIOR[q] for q in QUALITIES], 12)
    terms.setflags(write=False)
    return terms


def chord_scores(chroma: np.ndarray, bass: np.ndarray, length: np.ndarray | None = None) -> np.ndarray:
    """Fit of every chord of ``vocabulary_chords`` to segments' chroma and bass, (n, 12) each -> (n, K).

    ``length`` (n,): each segment's metre-weighted length; a pitch class sounds when it fills ``PRESENT``
    of it (without ``length``: when it has ``PRESENT`` of the strongest pitch class's weight).
    A silent segment fits only no chord (score 1); a sounding one never does.
    """
    mass = chroma.sum(axis=1, keepdims=True)
    silent = mass[:, 0] <= 0
    share = chroma / np.where(mass > 0, mass, 1.0)
    full = chroma.max(axis=1, keepdims=True) if length is None else np.asarray(length, np.float64)[:, None]
    sounds = ((chroma >= PRESENT * full) & (chroma > 0)).astype(np.float64)
    bass_total = bass.sum(axis=1, keepdims=True)
    lowest = bass / np.where(bass_total > 0, bass_total, 1.0)
    # all terms are sums over a chord's tones or its root, so add the rows first and sum once (linear):
    # share on tones - MISSING * (tones - tones sounding) - ROOT_MISSING * (1 - root sounds)
    # + BASS_ROOT * bass share on the root + BASS_TONE * bass share on tones - prior
    fit = _per_chord(share + MISSING * sounds + BASS_TONE * lowest)
    fit += np.repeat(ROOT_MISSING * sounds + BASS_ROOT * lowest, len(QUALITIES), axis=1)
    fit += _constant_terms()
    scores = np.empty((len(chroma), fit.shape[1] + 1))
    scores[:, 1:] = np.where(silent[:, None], -np.inf, fit)
    scores[:, 0] = np.where(silent, 1.0, -np.inf)
    return scores


@lru_cache(maxsize=48)
def key_bonus(tonic: int, mode: int, melody: bool = False) -> np.ndarray:
    """Per vocabulary chord: ``KEY_FIT`` when its triad (root, third, fifth: a sixth or seventh may be
    chromatic) is in the key's scale, plus ``PRIMARY`` on I, IV and V (``MELODY_*`` for a melody alone)."""
    scale = {(tonic + step) % 12 for step in _SCALES[mode]}
    inside = np.array([not c.is_none and {(c.root + s) % 12 for s in QUALITIES[c.quality][:3]} <= scale
                       for c in vocabulary_chords()])
    roots = _tone_table()[1]
    primary = inside & np.isin(roots, [tonic, (tonic + 5) % 12, (tonic + 7) % 12])
    bonus = (MELODY_KEY_FIT if melody else KEY_FIT) * inside + (MELODY_PRIMARY if melody else PRIMARY) * primary
    bonus.setflags(write=False)
    return bonus


def _choose_levels(scores, lo, hi, bar, level, n_bars: int, resolution: str) -> np.ndarray:
    """The segments kept: per bar the coarsest level whose fit is within ``COARSER`` of the best."""
    length = (hi - lo).astype(np.float64)
    bar_length = np.bincount(bar, weights=np.where(level == 0, length, 0.0), minlength=n_bars)
    fit = np.full((n_bars, len(_LEVELS)), -np.inf)
    best = scores.max(axis=1) * length / bar_length[bar]
    sums = np.bincount(bar * len(_LEVELS) + level, weights=best, minlength=n_bars * len(_LEVELS))
    has = np.bincount(bar * len(_LEVELS) + level, minlength=n_bars * len(_LEVELS)) > 0
    fit.reshape(-1)[has] = sums[has]
    if resolution == "auto":
        chosen = np.argmax(fit >= fit.max(axis=1, keepdims=True) - COARSER, axis=1)
    else:  # the finest level up to the one asked for that the bar has (a 3/4 bar has no halves)
        allowed = np.isfinite(fit) & (np.arange(len(_LEVELS)) <= _LEVELS.index(resolution))
        chosen = len(_LEVELS) - 1 - np.argmax(allowed[:, ::-1], axis=1)
    return chosen[bar] == level


def _viterbi(emissions: np.ndarray, change: float) -> np.ndarray:
    """The best chord path through segments' emissions (n, K) with a cost per change.

    A segment whose best chord beats every other by more than two changes is on every best path (an
    anchor), so only the runs between anchors are searched, each over the chords that are among the
    ``CANDIDATES`` best of one of its segments (short Python lists: fast for small files).
    """
    best = np.argmax(emissions, axis=1)
    ordered = np.partition(emissions, -2, axis=1)
    anchor = ordered[:, -1] - ordered[:, -2] > 2 * change
    path = best.copy()
    loose = np.flatnonzero(~anchor)
    if not len(loose):
        return path
    breaks = np.flatnonzero(np.diff(loose) > 1) + 1
    for run in np.split(loose, breaks):
        a, b = int(run[0]), int(run[-1]) + 1
        left = int(best[a - 1]) if a > 0 else None
        right = int(best[b]) if b < len(best) else None
        path[a:b] = _viterbi_run(emissions[a:b], change, left, right)
    return path


def _viterbi_run(emissions: np.ndarray, change: float, left: int | None, right: int | None) -> np.ndarray:
    """``_viterbi`` of a run of segments between the chords ``left`` and ``right`` (None: the piece's edge)."""
    top = min(CANDIDATES, emissions.shape[1])
    extra = [k for k in (left, right) if k is not None]
    states = np.unique(np.concatenate([np.argpartition(-emissions, top - 1, axis=1)[:, :top].ravel(), np.array(extra, np.int64)]))
    rows = emissions[:, states].tolist()
    keys = states.tolist()
    total = [e - (change if left is not None and k != left else 0.0) for k, e in zip(keys, rows[0], strict=True)]
    back = []
    for row in rows[1:]:
        best = max(total)
        leader, switch = total.index(best), best - change
        back.append([k if t >= switch else leader for k, t in enumerate(total)])
        total = [(t if t >= switch else switch) + e for t, e in zip(total, row, strict=True)]
    if right is not None:
        total = [t - (change if k != right else 0.0) for k, t in zip(keys, total, strict=True)]
    path = [total.index(max(total))]
    for pointers in reversed(back):
        path.append(pointers[path[-1]])
    return states[np.array(path[::-1], np.int64)]


@lru_cache(maxsize=1)
def _tone_table() -> tuple[np.ndarray, np.ndarray]:
    """Per vocabulary chord: its tones (K, 12) bool and its root (K,) (-1 for no chord); read-only."""
    chords = vocabulary_chords()
    tones = np.zeros((len(chords), 12), bool)
    for k, chord in enumerate(chords):
        tones[k, sorted(chord.pitch_classes)] = True
    roots = np.array([-1 if c.is_none else c.root for c in chords])
    tones.setflags(write=False)
    roots.setflags(write=False)
    return tones, roots


def _bass_notes(path: np.ndarray, bass: np.ndarray) -> np.ndarray:
    """Per segment the bass pitch class to name (-1: none): a chord tone other than the root that is the
    lowest note at least ``BASS_SHARE`` of the (weighted) time."""
    tones, roots = _tone_table()
    lowest = np.argmax(bass, axis=1)
    total = bass.sum(axis=1)
    held = bass[np.arange(len(bass)), lowest] >= BASS_SHARE * np.maximum(total, 1e-12)
    named = held & (total > 0) & (roots[path] >= 0) & (lowest != roots[path]) & tones[path, lowest]
    return np.where(named, lowest, -1)


# --- the reader ------------------------------------------------------------------------------------
def read_chords(score, *, resolution: str = "auto") -> list[ChordSpan]:
    """The chords of a ``symusic.Score``: spans in beats (quarter notes) from its start, covering its bars.

    ``resolution``: ``"auto"`` (per bar the coarsest of bar, half bar and beat that fits), or one of
    ``"bar"``, ``"half"``, ``"beat"`` for at most that fine (a bar without halves is read whole).
    Drums are ignored; ``N`` where nothing sounds; consecutive equal chords are merged.
    """
    if resolution not in RESOLUTIONS:
        msg = f"unknown chord resolution {resolution!r}: use one of {', '.join(RESOLUTIONS)}"
        raise ChordError(msg)
    score, tpq = _on_grid(score)
    pitch, start, stop = _pitched_notes(score, tpq)
    end_step = int(stop.max()) if len(stop) else 0
    if end_step == 0:
        return []
    bars = [b for b in bar_lines(score, tpq, end_step) if b[0] < end_step]
    n_steps = bars[-1][1]
    lo, hi, bar, level = _segments(bars)
    weights = _step_weights(bars, n_steps)
    steps, roll = _roll_features(pitch, start, stop, n_steps, weights)
    features = _sums(np.concatenate([steps, roll * weights]), lo, hi)  # 25 step features, then each pitch
    sounding = roll.sum(axis=0)
    melody = np.count_nonzero(sounding >= 2) < MONOPHONIC * max(np.count_nonzero(sounding), 1)
    features[:, 12:24] = 0.0 if melody else _segment_bass(features[:, 12:24], features[:, 25:], features[:, 24])
    scores = chord_scores(features[:, :12], features[:, 12:24], features[:, 24])
    scores += key_bonus(*key_of(features[level == 0, :12].sum(axis=0)), melody)
    silent = features[:, :12].sum(axis=1) <= 0
    scores[silent & ~silent[level == 0][bar]] = 0.0  # a rest inside a sounding bar: no evidence either way
    keep = _choose_levels(scores, lo, hi, bar, level, len(bars), resolution)
    lo, hi, scores, bass = lo[keep], hi[keep], scores[keep], features[keep, 12:24]
    path = _viterbi(scores * ((hi - lo) / GRID)[:, None], CHANGE)
    return _merge(lo, hi, path, _bass_notes(path, bass))


def _merge(lo: np.ndarray, hi: np.ndarray, path: np.ndarray, bass: np.ndarray) -> list[ChordSpan]:
    """Spans of the segments' chords (vocabulary index and named bass), consecutive equal ones merged."""
    code = path * 13 + bass + 1
    first = np.flatnonzero(np.concatenate(([True], code[1:] != code[:-1])))
    last = np.concatenate((first[1:], [len(code)])) - 1
    chords = vocabulary_chords()
    spans = []
    for a, b in zip(first.tolist(), last.tolist(), strict=True):
        chord = chords[int(path[a])]
        if bass[a] >= 0:
            chord = Chord(chord.root, chord.quality, int(bass[a]))
        spans.append(ChordSpan(Fraction(int(lo[a]), GRID), Fraction(int(hi[b]), GRID), chord))
    return spans


# --- CSV ---------------------------------------------------------------------------------------------
CSV_HEADER = ("start_beat", "end_beat", "start_s", "end_s", "chord")


def beats_to_seconds(beats, score) -> np.ndarray:
    """Seconds at ``beats`` (quarter notes from the start) under the score's tempo map (120 qpm without one)."""
    score, tpq = _on_grid(score)
    changes = sorted((float(t.time) / tpq, float(t.qpm)) for t in score.tempos if t.qpm > 0)
    if not changes or changes[0][0] > 0:
        changes.insert(0, (0.0, changes[0][1] if changes else 120.0))
    at = np.array([c[0] for c in changes])
    spq = 60.0 / np.array([c[1] for c in changes])  # seconds per quarter
    elapsed = np.concatenate(([0.0], np.cumsum(np.diff(at) * spq[:-1])))
    beats = np.asarray(beats, np.float64)
    i = np.maximum(np.searchsorted(at, beats, side="right") - 1, 0)
    return elapsed[i] + (beats - at[i]) * spq[i]


def _number(value: float | Fraction) -> str:
    return f"{float(value):.6f}".rstrip("0").rstrip(".")


def chords_to_csv(spans: list[ChordSpan], score) -> str:
    """The spans as CSV (``start_beat,end_beat,start_s,end_s,chord``, chord as ``ROOT:QUALITY[/BASS]``)."""
    seconds = beats_to_seconds([float(t) for s in spans for t in (s.start, s.end)], score)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for i, span in enumerate(spans):
        writer.writerow([_number(span.start), _number(span.end), _number(seconds[2 * i]), _number(seconds[2 * i + 1]), span.chord.label])
    return out.getvalue()


def chords_from_csv(text: str) -> list[ChordSpan]:
    """Spans from ``chords_to_csv``'s CSV (the seconds columns are not needed; beats are read exactly)."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip() for c in rows[0]][:2] != list(CSV_HEADER[:2]) or "chord" not in rows[0]:
        msg = f"chord CSV must start with the header {','.join(CSV_HEADER)}"
        raise ChordError(msg)
    column = [c.strip() for c in rows[0]].index("chord")
    spans = []
    for number, row in enumerate(rows[1:], 2):
        if not row:
            continue
        try:
            start, end = (Fraction(row[0]).limit_denominator(960), Fraction(row[1]).limit_denominator(960))
        except (ValueError, IndexError, ZeroDivisionError) as exc:
            msg = f"chord CSV line {number}: bad beats {row[:2]}"
            raise ChordError(msg) from exc
        if end <= start or len(row) <= column:
            msg = f"chord CSV line {number}: a span needs end_beat > start_beat and a chord"
            raise ChordError(msg)
        spans.append(ChordSpan(start, end, parse_chord(row[column])))
    return spans


# --- a readable line per bar ---------------------------------------------------------------------------
_SHORT = {"maj": "", "min": "m", "7": "7", "maj7": "maj7", "min7": "m7", "dim": "dim", "aug": "aug", "sus2": "sus2",
          "sus4": "sus4", "dim7": "dim7", "hdim7": "m7b5", "6": "6", "min6": "m6"}


def short_label(chord: Chord) -> str:
    """The spelling musicians write (``Am``, ``G7``, ``C/E``, ``Bm7b5``, ``N``); ``parse_chord`` reads it back."""
    if chord.is_none:
        return NO_CHORD_LABEL
    text = NOTE_NAMES[chord.root] + _SHORT[chord.quality]
    return text if chord.bass is None else f"{text}/{NOTE_NAMES[chord.bass]}"


def format_chord_bars(spans: list[ChordSpan], score) -> str:
    """One line per bar of the score, a word per beat: the chord sounding on it, ``.`` when it goes on
    (a chord that starts between beats follows its beat's word): ``bar 1 | Am . F . |``."""
    if not spans:
        return "(no notes: no chords)"
    score, tpq = _on_grid(score)
    end_step = int(np.ceil(float(spans[-1].end) * GRID))
    starts = [s.start for s in spans]
    lines = []
    for number, (b0, b1, beat) in enumerate((b for b in bar_lines(score, tpq, end_step) if b[0] < end_step), 1):
        words, previous = [], None
        for step in range(b0, b1, beat):
            at, upto = Fraction(step, GRID), Fraction(min(step + beat, b1), GRID)
            i = max(bisect.bisect_right(starts, at) - 1, 0)
            word = short_label(spans[i].chord) if spans[i].start <= at < spans[i].end else NO_CHORD_LABEL
            words.append("." if word == previous else word)
            previous = word
            for later in spans[i + 1:bisect.bisect_left(starts, upto)]:
                words.append(short_label(later.chord))
                previous = words[-1]
        lines.append(f"bar {number:>3} | {' '.join(words)} |")
    return "\n".join(lines)
