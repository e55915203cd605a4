"""MIDI becomes MMM text here: ``score_to_texts`` (its inverse, ``text_to_score``, is ``decode.py``).

The pair is pure: a ``symusic.Score`` in, window texts out (this module), and any word sequence
back to a valid score (``decode.py``). ``from mmmgen import score_to_texts, text_to_score`` gives
both. Text <-> token ids is ``model/tokenizer.py``'s job; the words come from ``vocab.py``.

Pipeline of the encoder::

    Score --quantize--> tracks of (pitch, start, end) in grid steps
          --segments--> stretches of constant meter
          --windows---> Window(bars x bar_steps, tracks)      (score_to_windows)
          --text------> "PIECE_START TIME_SIGNATURE=4_4 GENRE=X TRACK_START ..."   (window_to_text)

Notes held over a bar line are tied, not re-attacked: the bar where the note starts has no
``NOTE_OFF`` for it, and every later bar it sounds in opens with ``NOTE_HOLD=p``. So each bar
states on its own which pitches sound in it, and any bar can be replaced without breaking the
others: a ``NOTE_HOLD`` with nothing to continue starts the note at the bar line, and a note left
open at ``BAR_END`` that the next bar does not hold ends at the bar line.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mmmgen.config import CodecConfig
from mmmgen.text import vocab as V
from mmmgen.text.vocab import bar_steps


@dataclass
class TrackNotes:
    """One track of a window: notes as ``(pitch, start, end[, velocity])`` in grid steps."""

    program: int
    is_drum: bool
    notes: np.ndarray  # int64 array (n, 4): pitch, start, end, velocity; sorted by start, pitch
    source: int = -1  # index of the score track it was cut from (-1: not from a score)

    @property
    def word(self) -> str:
        return V.inst(self.program, self.is_drum)


@dataclass
class Window:
    """``n_bars`` bars of constant meter cut from a score; times are relative to the window."""

    time_signature: tuple[int, int]
    n_bars: int
    bar_steps: int
    tracks: list[TrackNotes]
    start_bar: int = 0  # index of the window's first bar in the source score
    start_step: int = 0  # grid steps from the score's start to the window's (where its chords begin)

    @property
    def n_steps(self) -> int:
        return self.n_bars * self.bar_steps

    def note_count(self, track: TrackNotes) -> int:
        """Notes that start inside the window (what ``DENSITY`` bins)."""
        return int(np.count_nonzero(track.notes[:, 1] >= 0))

    @property
    def n_notes(self) -> int:
        """Notes sounding in the window, held-in ones included (what ``min_notes`` filters)."""
        return sum(len(t.notes) for t in self.tracks)


# --- quantization ------------------------------------------------------------------------------
def quantize_notes(notes: dict[str, np.ndarray], tpq: int, grid: int) -> np.ndarray:
    """Notes of a track (symusic ``notes.numpy()``) on the grid, cleaned so text can hold them.

    Onsets and offsets snap to the nearest step; notes shorter than a step last one step; a
    re-struck pitch cuts the previous note of that pitch (text cannot hold two at once); exact
    duplicates are dropped. Returns an (n, 4) int64 array ``pitch, start, end, velocity`` sorted
    by start then pitch.
    """
    return _quantize_tracks([notes], tpq, grid)[:, 1:]


def _quantize_tracks(tracks: list[dict[str, np.ndarray]], tpq: int | np.ndarray, grid: int) -> np.ndarray:
    """``quantize_notes`` of several tracks at once: an (n, 5) int64 array ``track, pitch, start,
    end, velocity`` sorted by track, start, pitch (one set of numpy calls for the whole score, or
    for many scores: ``tpq`` then gives each note's ticks per quarter)."""
    sizes = [len(notes["time"]) for notes in tracks]
    arr = np.empty((sum(sizes), 5), np.int64)
    if len(arr) == 0:
        return arr
    time = np.concatenate([notes["time"] for notes in tracks]) if len(tracks) > 1 else tracks[0]["time"]
    duration = np.concatenate([notes["duration"] for notes in tracks]) if len(tracks) > 1 else tracks[0]["duration"]
    arr[:, 0] = np.repeat(np.arange(len(tracks)), sizes)
    arr[:, 1] = np.concatenate([notes["pitch"] for notes in tracks]) if len(tracks) > 1 else tracks[0]["pitch"]
    arr[:, 2] = np.rint(time * grid / tpq)
    arr[:, 3] = np.rint((time + duration) * grid / tpq)
    np.maximum(arr[:, 3], arr[:, 2] + 1, out=arr[:, 3])
    arr[:, 4] = np.concatenate([notes["velocity"] for notes in tracks]) if len(tracks) > 1 else tracks[0]["velocity"]
    arr = arr[_sort_order(arr[:, 0], arr[:, 1], arr[:, 2], -arr[:, 3])]  # by track, pitch, start, longest first
    same_pitch_next = (arr[1:, 1] == arr[:-1, 1]) & (arr[1:, 0] == arr[:-1, 0])
    duplicate = same_pitch_next & (arr[1:, 2] == arr[:-1, 2])  # duplicate onset: keep the longest
    if duplicate.any():
        arr = arr[np.concatenate(([True], ~duplicate))]
        same_pitch_next = (arr[1:, 1] == arr[:-1, 1]) & (arr[1:, 0] == arr[:-1, 0])
    overlap = same_pitch_next & (arr[1:, 2] < arr[:-1, 3])
    if overlap.any():
        arr[:-1, 3] = np.where(overlap, arr[1:, 2], arr[:-1, 3])
    return arr[_sort_order(arr[:, 0], arr[:, 2], arr[:, 1])]


def _sort_order(*keys: np.ndarray) -> np.ndarray:
    """``np.lexsort`` of ``keys`` given most significant first (the same stable order), as one
    ``argsort`` of a single int64 key when the keys fit in one: several times faster."""
    packed = np.zeros(len(keys[0]), np.int64)
    room = 1
    for key in keys:
        low, span = int(key.min()), int(key.max()) - int(key.min()) + 1
        room *= span
        if room >= 2**62:
            return np.lexsort(keys[::-1])
        packed *= span
        packed += key - low
    return np.argsort(packed, kind="stable")


def meter_segments(score, grid: int, end_tick: int | None = None) -> list[tuple[int, int, tuple[int, int]]]:
    """``(start_step, n_bars, (num, den))`` stretches of constant meter covering the score.

    No time signature means 4/4. A meter change mid-bar starts a new segment there (the partial
    bar before it is dropped). Meters the vocabulary cannot spell are returned too; callers skip them.
    ``end_tick`` (the last note end, when the caller has it) saves reading the notes again.
    """
    tpq = score.tpq
    signatures: dict[int, tuple[int, int]] = {}
    for ts in sorted(score.time_signatures, key=lambda ts: ts.time):
        signatures[round(ts.time * grid / tpq)] = (ts.numerator, ts.denominator)
    if not signatures or min(signatures) > 0:
        signatures.setdefault(0, (4, 4))
    changes: list[tuple[int, tuple[int, int]]] = []
    for step, meter in sorted(signatures.items()):
        if not changes or changes[-1][1] != meter:
            changes.append((step, meter))
    if end_tick is None:
        end_tick = max((_last_end(t.notes.numpy()) for t in score.tracks if len(t.notes)), default=0)
    end_step = math.ceil(max(end_tick, score.end()) * grid / tpq)  # symusic's end() is the last onset
    segments = []
    for i, (step, meter) in enumerate(changes):
        seg_end = changes[i + 1][0] if i + 1 < len(changes) else end_step
        length = max(bar_steps(meter, grid), 1)
        last = i + 1 == len(changes)
        n_bars = math.ceil((seg_end - step) / length) if last else (seg_end - step) // length
        if n_bars > 0:
            segments.append((step, n_bars, meter))
    return segments


def _last_end(notes: dict[str, np.ndarray]) -> int:
    return int((notes["time"] + notes["duration"]).max())


# --- encoder -----------------------------------------------------------------------------------
def score_to_windows(score, config: CodecConfig | None = None) -> list[Window]:
    """Cut a score into windows of ``config.bars`` bars every ``config.hop`` bars.

    Windows never cross a meter change and cover the whole score: the last window of a segment
    (or a segment shorter than one window) is padded with silent bars to ``config.bars`` bars. Tracks without notes in a window are left
    out of it; windows with fewer than ``config.min_notes`` notes are dropped.
    """
    config = config or CodecConfig()
    grid, tpq = config.grid, score.tpq
    arrays = [(t.program, t.is_drum, t.notes.numpy(), i) for i, t in enumerate(score.tracks) if len(t.notes) > 0]
    end_tick = max((_last_end(notes) for _, _, notes, _ in arrays), default=0)
    cutter = _Cutter(_quantize_tracks([notes for _, _, notes, _ in arrays], tpq, grid), [(p, d, i) for p, d, _, i in arrays])
    windows: list[Window] = []
    bar_index = 0
    for seg_start, n_bars, meter in meter_segments(score, grid, end_tick):
        if V.parse_time_signature(f"{meter[0]}_{meter[1]}") is None:
            bar_index += n_bars  # a meter the text cannot spell (e.g. 7/32)
            continue
        length = bar_steps(meter, grid)
        hop = config.hop or config.bars
        # every hop bars; a last, partial window only if it reaches bars no earlier window held
        starts = [s for s in range(0, n_bars, hop) if s == 0 or s - hop + config.bars < n_bars]
        for first_bar in starts:
            w0 = seg_start + first_bar * length
            w1 = w0 + min(config.bars, n_bars - first_bar) * length
            window = Window(meter, config.bars, length, cutter.cut(w0, w1), bar_index + first_bar, w0)
            if window.n_notes >= max(config.min_notes, 1):
                windows.append(window)
        bar_index += n_bars
    return windows


class _Cutter:
    """The quantized notes of all tracks (``_quantize_tracks``), cut into windows: ``cut`` gives
    each track's ``_clip_notes``. Small scores are cut with one set of numpy calls for all tracks;
    large ones per track by binary search (``_ClipIndex``), which does not test every note."""

    SMALL = 4096  # notes

    def __init__(self, notes: np.ndarray, tracks: list[tuple[int, bool, int]]):
        self.notes, self.tracks = notes, tracks
        bounds = np.searchsorted(notes[:, 0], np.arange(len(tracks) + 1)).tolist()
        self.indexes = None
        if len(notes) > self.SMALL:
            self.indexes = [_ClipIndex(notes[a:b, 1:]) for a, b in itertools.pairwise(bounds)]

    def cut(self, w0: int, w1: int) -> list[TrackNotes]:
        if self.indexes is not None:
            cuts = [index.clip(w0, w1) for index in self.indexes]
        else:
            sel = self.notes[(self.notes[:, 2] < w1) & (self.notes[:, 3] > w0)]
            bounds = np.searchsorted(sel[:, 0], np.arange(len(self.tracks) + 1)).tolist()
            sel = sel[:, 1:]  # a copy: shift in place
            sel[:, 1:3] -= w0
            np.maximum(sel[:, 1], -1, out=sel[:, 1])
            np.minimum(sel[:, 2], w1 - w0, out=sel[:, 2])
            cuts = [sel[a:b] for a, b in itertools.pairwise(bounds)]
        return [TrackNotes(p, d, cut, i) for (p, d, i), cut in zip(self.tracks, cuts, strict=True) if len(cut)]


class _ClipIndex:
    """A track's notes (sorted by start) ready to be cut into many windows: ``clip`` gives what
    ``_clip_notes`` gives, finding the notes by binary search instead of testing all of them."""

    def __init__(self, notes: np.ndarray):
        self.notes = notes
        self.starts = np.ascontiguousarray(notes[:, 1])
        self.ends = notes[:, 2]
        self.max_len = int((notes[:, 2] - notes[:, 1]).max()) if len(notes) else 0

    def clip(self, w0: int, w1: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.starts, (w0 - self.max_len, w1)).tolist()  # only these can sound in [w0, w1)
        cut = self.notes[lo:hi]
        held = cut[:, 1] < w0
        if held.any():
            cut = cut[~held | (cut[:, 2] > w0)]
        cut = cut.copy()
        cut[:, 1:3] -= w0
        np.maximum(cut[:, 1], -1, out=cut[:, 1])
        np.minimum(cut[:, 2], w1 - w0, out=cut[:, 2])
        return cut


def _clip_notes(notes: np.ndarray, w0: int, w1: int) -> np.ndarray:
    """Notes sounding in ``[w0, w1)``, shifted to the window; held-in notes start at -1.

    A start of -1 marks a note that began before the window (it is written as ``NOTE_HOLD`` in
    the first bar and not counted as a note of the window).
    """
    inside = (notes[:, 1] < w1) & (notes[:, 2] > w0)
    cut = notes[inside].copy()
    cut[:, 1:3] -= w0
    cut[:, 1] = np.where(cut[:, 1] < 0, -1, cut[:, 1])
    cut[:, 2] = np.minimum(cut[:, 2], w1 - w0)
    return cut


_NOTE_ON = tuple(V.note_on(p) for p in range(V.N_PITCHES))
_NOTE_OFF = tuple(V.note_off(p) for p in range(V.N_PITCHES))
_NOTE_HOLD = tuple(V.note_hold(p) for p in range(V.N_PITCHES))


def track_to_bar_texts(track: TrackNotes, n_bars: int, bar_len: int, grid: int) -> list[str]:
    """The words of each bar of a track, ``BAR_START ... BAR_END`` included.

    One pass over the notes: each onset goes to its bar, each offset to the bar it closes, each
    bar a note sounds through gets a ``NOTE_HOLD``; then one sort of the events by (time,
    off-before-on, pitch), packed in one int each. Time order is bar order: an offset on a bar
    line closes the bar before it and sorts before the onsets that open the next bar.
    """
    limit = n_bars * bar_len
    holds: list[list[int]] = [[] for _ in range(n_bars)]
    keys: list[int] = []  # time * 256 + (128 if onset) + pitch
    for pitch, start, end, _ in track.notes.tolist():
        if 0 <= start < limit:
            keys.append(start * 256 + 128 + pitch)
        if end <= limit:
            keys.append(end * 256 + pitch)
        first = start // bar_len + 1
        if end > first * bar_len:  # sounds past its bar: held in the next ones
            for bar in range(first, min(-(-end // bar_len), n_bars)):
                holds[bar].append(pitch)
    keys.sort()
    bars, i, n = [], 0, len(keys)
    for b in range(n_bars):
        words = [V.BAR_START, *(_NOTE_HOLD[p] for p in sorted(holds[b]))] if holds[b] else [V.BAR_START]
        t = b * bar_len
        bar_end = t + bar_len
        while i < n:
            key = keys[i]
            time = key >> 8
            if key & 128:  # onset: in this bar while before its end
                if time >= bar_end:
                    break
                if time != t:
                    words += _time_delta_words(time - t, grid)
                    t = time
                words.append(_NOTE_ON[key & 127])
            else:  # offset: closes this bar up to and at its end
                if time > bar_end:
                    break
                if time != t:
                    words += _time_delta_words(time - t, grid)
                    t = time
                words.append(_NOTE_OFF[key & 127])
            i += 1
        words.append(V.BAR_END)
        bars.append(" ".join(words))
    return bars


@lru_cache(maxsize=4096)
def _time_delta_words(steps: int, grid: int) -> tuple[str, ...]:
    longest = V.max_time_delta_steps(grid)
    words = [V.time_delta(longest, grid)] * (steps // longest)
    if steps % longest:
        words.append(V.time_delta(steps % longest, grid))
    return tuple(words)


def density_level(n_notes: int, edges: list[float] | np.ndarray | None) -> int:
    """The ``DENSITY`` level of a track with ``n_notes`` notes (``len(edges) + 1`` levels)."""
    if edges is None or len(edges) == 0:
        return 0
    if isinstance(edges, list):  # as np.searchsorted(side="right"), without building an array per call
        return bisect.bisect_right(edges, n_notes)
    return int(np.searchsorted(np.asarray(edges), n_notes, side="right"))


def window_to_parts(window: Window, grid: int = 12, chords: list | None = None, transpose: int = 0) -> list[tuple[str, int, str]]:
    """Per track: ``(INST word, notes in the window, bar texts)``, the costly part of encoding.

    Kept apart from ``parts_to_text`` so the density level can be chosen later, once the
    dataset-wide density edges are known. ``chords`` (the score's ``ChordSpan`` s, in quarter
    notes from its start): the chord track comes first (``chord_part``), ``transpose``d.
    """
    parts = [
        (track.word, window.note_count(track), " ".join(track_to_bar_texts(track, window.n_bars, window.bar_steps, grid)))
        for track in window.tracks
    ]
    if chords is None:
        return parts
    return [chord_part(chords, window.start_step, window.n_bars, window.bar_steps, grid, transpose), *parts]


def chord_part(chords: list, start_step: int, n_bars: int, bar_len: int, grid: int, transpose: int = 0) -> tuple[str, int, str]:
    """The chord track of a window as a part ``(INST=CHORDS, 0, bar texts)`` (``text/chord_track.py``)."""
    from mmmgen.text.chord_track import chord_bar_texts

    return V.chord_track_inst(), 0, " ".join(chord_bar_texts(chords, n_bars, bar_len, grid, start_step, transpose))


def parts_to_text(
    time_signature: tuple[int, int],
    genre: str | None,
    parts: list[tuple[str, int, str]],
    density_edges: list[float] | np.ndarray | None = None,
    piece_end: bool = False,
) -> str:
    """Assemble a window's text from its header settings and ``window_to_parts`` output."""
    words = [V.PIECE_START, V.time_signature(*time_signature), V.genre(V.normalize_genre(genre))]
    for inst_word, n_notes, bars in parts:
        level = 0 if inst_word == V.chord_track_inst() else density_level(n_notes, density_edges)
        words += [V.TRACK_START, inst_word, V.density(level), bars, V.TRACK_END]
    if piece_end:
        words.append(V.PIECE_END)
    return " ".join(words)


def window_to_text(
    window: Window,
    genre: str | None = None,
    density_edges: list[float] | np.ndarray | None = None,
    grid: int = 12,
    piece_end: bool = False,
) -> str:
    """The MMM text of one window."""
    parts = window_to_parts(window, grid)
    return parts_to_text(window.time_signature, genre, parts, density_edges, piece_end)


def score_to_texts(
    score,
    config: CodecConfig | None = None,
    genre: str | None = None,
    density_edges: list[float] | np.ndarray | None = None,
) -> list[str]:
    """All window texts of a score (see ``score_to_windows`` and ``window_to_text``)."""
    config = config or CodecConfig()
    return [
        window_to_text(w, genre, density_edges, config.grid)
        for w in score_to_windows(score, config)
    ]
