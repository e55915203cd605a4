"""The encoder for many scores at once: ``scores_to_parts`` (what ``mmmgen prepare`` runs).

It gives exactly what ``score_to_windows``, ``prepare.transpose_window`` and ``window_to_parts``
(encode.py: the readable reference; tests/text/test_batch.py compares the two) give, window by
window, but computes it with numpy
over all the notes of a batch of scores together. On a corpus of thousands of small files the
reference spends its time in a Python loop per word (``track_to_bar_texts``) and in numpy calls
on tiny arrays (per file, track and window); here one set of numpy calls handles the whole batch,
and the only loop left per word is ``str.join``.

How: the notes of all scores are quantized together, each note is given to every window it sounds
in (windows are sorted by start and by end, so that is a range found by ``searchsorted``), copied
once per transposition, and every word of every bar becomes an item with a sort key (track of a
window, bar, then ``BAR_START`` < holds by pitch < note events by time, off before on, pitch <
``BAR_END``), packed in one int64. One ``np.sort`` puts the items in text order; the
``TIME_DELTA`` words before each event are then inserted by ``np.repeat``. Batches of about
30,000 notes (``prepare.BATCH_NOTES``) keep the arrays in cache: 2.3-2.7x the reference's speed on
chorales, multitrack files and real folders alike (measured with the load included).
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

from mmmgen.config import CodecConfig
from mmmgen.text import vocab as V
from mmmgen.text.encode import _quantize_tracks, chord_part, meter_segments
from mmmgen.text.vocab import bar_steps

# word ids of the table ``_words(grid)``
_BAR_START, _BAR_END, _ON, _OFF, _HOLD, _DELTA = 0, 1, 2, 2 + V.N_PITCHES, 2 + 2 * V.N_PITCHES, 2 + 3 * V.N_PITCHES
_FILE = 1 << 40  # steps of one score in the window search key (file * _FILE + step)
_KEY_LIMIT = 2**62  # sort keys of bar words stay below this (int64)


@lru_cache(maxsize=8)
def _words(grid: int) -> np.ndarray:
    """Every word a bar text can hold, as an object array indexed by the ids above
    (``_DELTA + k``: the ``TIME_DELTA`` of ``k`` steps, 1 <= k <= the longest)."""
    words = [V.BAR_START, V.BAR_END]
    words += [V.note_on(p) for p in range(V.N_PITCHES)]
    words += [V.note_off(p) for p in range(V.N_PITCHES)]
    words += [V.note_hold(p) for p in range(V.N_PITCHES)]
    words += ["", *(V.time_delta(k, grid) for k in range(1, V.max_time_delta_steps(grid) + 1))]
    return np.array(words, dtype=object)


def scores_to_parts(scores: list, config: CodecConfig, transpositions: list[tuple[int, ...]], chords: list | None = None) -> list[list[dict]]:
    """For each score, its windows' parts: ``{"start_bar", "ts", "transpose", "parts"}`` per
    window and transposition (window by window, transpositions in the order given), ``parts``
    as ``window_to_parts`` gives them. Windows with fewer than ``config.min_notes`` notes (after
    transposing) are left out, as ``score_to_windows`` and ``prepare`` leave them out.
    ``chords``: per score, its ``ChordSpan`` s (or None): the chord track comes first in its windows."""
    grid, n_bars, hop = config.grid, config.bars, config.hop or config.bars
    threshold = max(config.min_notes, 1)
    # 1. per score, in Python: its tracks with notes and its windows (w0, w1, bar length, first bar, meter)
    tracks, track_file, track_word, track_drum, tpq = [], [], [], [], []
    for f, score in enumerate(scores):
        for t in score.tracks:
            if len(t.notes):
                tracks.append(t.notes.numpy())
                track_file.append(f)
                track_word.append(V.inst(t.program, t.is_drum))
                track_drum.append(t.is_drum)
                tpq.append(score.tpq)
    out: list[list[dict]] = [[] for _ in scores]
    if not tracks:
        return out
    sizes = np.array([len(n["time"]) for n in tracks])
    ends = np.maximum.reduceat(np.concatenate([n["time"] + n["duration"] for n in tracks]), np.cumsum(sizes) - sizes)
    file_end = np.zeros(len(scores), np.int64)
    np.maximum.at(file_end, track_file, ends)
    win = []  # (file, w0, w1, bar length, start bar, meter)
    for f, score in enumerate(scores):
        bar_index = 0
        for seg_start, seg_bars, meter in meter_segments(score, grid, int(file_end[f])):
            if V.parse_time_signature(f"{meter[0]}_{meter[1]}") is not None:
                length = bar_steps(meter, grid)
                for first in range(0, seg_bars, hop):
                    if first and first - hop + n_bars >= seg_bars:
                        break  # a last, partial window only if it reaches bars no earlier window held
                    w0 = seg_start + first * length
                    win.append((f, w0, w0 + min(n_bars, seg_bars - first) * length, length, bar_index + first, meter))
            bar_index += seg_bars
    if not win:
        return out
    win_file, win_w0, win_w1, win_len = (np.array([w[i] for w in win], np.int64) for i in range(4))

    # 2. all notes quantized together, each given to every window it sounds in
    notes = _quantize_tracks(tracks, np.repeat(np.array(tpq, np.int64), sizes), grid)
    track_file = np.array(track_file, np.int64)
    note_file = track_file[notes[:, 0]] * _FILE
    first = np.searchsorted(win_file * _FILE + win_w1, note_file + notes[:, 2], side="right")
    count = np.maximum(np.searchsorted(win_file * _FILE + win_w0, note_file + notes[:, 3], side="left") - first, 0)
    note, window = _expand(count, first)
    track, pitch = notes[note, 0], notes[note, 1]
    w0 = win_w0[window]
    start = np.maximum(notes[note, 2] - w0, -1)  # -1: held in from before the window
    end = np.minimum(notes[note, 3] - w0, win_w1[window] - w0)

    # 3. one copy per transposition (drums as they are; pitches pushed out of range dropped)
    shifts = [transpositions[f] for f in range(len(scores))]
    n_shifts = np.array([len(s) for s in shifts], np.int64)[win_file]  # per window
    first_shift = np.cumsum(n_shifts) - n_shifts  # window-and-shift ids: windows in order, shifts inner
    if any(s != (0,) for s in shifts):
        row, j = _expand(n_shifts[window], np.zeros(len(window), np.int64))
        flat = np.array([s for f in range(len(scores)) for s in shifts[f]], np.int64)
        flat_start = np.cumsum([len(s) for s in shifts]) - np.array([len(s) for s in shifts])
        value = flat[flat_start[win_file[window[row]]] + j]
        window, track, start, end = window[row], track[row], start[row], end[row]
        pitch = pitch[row] + np.where(np.array(track_drum)[track], 0, value)
        ws = first_shift[window] + j
        keep = (pitch >= 0) & (pitch < V.N_PITCHES)
        window, track, pitch, start, end, ws = window[keep], track[keep], pitch[keep], start[keep], end[keep], ws[keep]
    else:
        ws = first_shift[window]
    keep = np.bincount(ws)[ws] >= threshold  # windows with too few notes
    window, track, pitch, start, end, ws = window[keep], track[keep], pitch[keep], start[keep], end[keep], ws[keep]
    if not len(ws):
        return out

    # 4. one group per track of a window (and transposition), in window order, tracks in score order
    # (numbered through a table of every window x track of its score: np.unique would sort)
    first_track = np.searchsorted(track_file, np.arange(len(scores)))
    local = track - first_track[win_file[window]]
    width = int(local.max()) + 1
    present = np.zeros(int(first_shift[-1] + n_shifts[-1]) * width, bool)
    present[ws * width + local] = True
    group = (np.cumsum(present) - 1)[ws * width + local]
    group_keys = np.flatnonzero(present)
    group_ws = group_keys // width
    group_track = first_track[win_file[np.repeat(np.arange(len(win)), n_shifts)[group_ws]]] + group_keys % width
    texts = _bar_texts(group, pitch, start, end, win_len[window], len(group_keys), n_bars, grid)
    note_counts = np.bincount(group, weights=start >= 0, minlength=len(group_keys)).astype(np.int64).tolist()

    # 5. the windows of each score
    ws_window = np.repeat(np.arange(len(win)), n_shifts)
    ws_shift = [s for w in win for s in shifts[w[0]]]
    current = -1
    for g, (k, t) in enumerate(zip(group_ws.tolist(), group_track.tolist(), strict=True)):
        if k != current:
            current = k
            f, w0, _, length, start_bar, meter = win[ws_window[k]]
            parts: list = []
            if chords is not None and chords[f] is not None:
                parts.append(chord_part(chords[f], w0, n_bars, length, grid, ws_shift[k]))
            out[f].append({"start_bar": start_bar, "ts": list(meter), "transpose": ws_shift[k], "parts": parts})
        parts.append((track_word[t], note_counts[g], texts[g]))
    return out


def _expand(count: np.ndarray, first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``i`` repeated ``count[i]`` times, beside ``first[i], first[i] + 1, ...``."""
    index = np.repeat(np.arange(len(count)), count)
    offsets = np.cumsum(count) - count
    return index, first[index] + np.arange(len(index)) - offsets[index]


def _bar_texts(group, pitch, start, end, length, n_groups: int, n_bars: int, grid: int) -> list[str]:
    """The bar texts (``BAR_START ... BAR_END`` of every bar, joined) of each group of notes,
    as ``track_to_bar_texts`` writes them. Per note: ``group``, ``pitch``, ``start`` (-1: held
    in), ``end`` (at most the window's end) and the bar ``length`` of its window, in steps."""
    group_length = np.zeros(n_groups, np.int64)
    group_length[group] = length
    limit = n_bars * length
    # every word but the TIME_DELTAs is one sort key: ((group * n_bars + bar) * 4 + slot) * sub_max + sub
    # with slot 0 BAR_START, 1 a hold (sub = pitch), 2 an event (sub = time * 256 + 128 if onset + pitch), 3 BAR_END
    sub_max = (int(limit.max()) + 1) * 256
    if n_groups * n_bars * 4 * sub_max >= _KEY_LIMIT and n_groups > 1:  # too long for int64: in two halves
        half = n_groups // 2
        low = group < half
        return [*_bar_texts(group[low], pitch[low], start[low], end[low], length[low], half, n_bars, grid),
                *_bar_texts(group[~low] - half, pitch[~low], start[~low], end[~low], length[~low], n_groups - half, n_bars, grid)]  # fmt: skip
    first_held = start // length + 1  # holds: the bars after the note's first that it sounds into
    n_held = np.maximum(np.minimum(-(-end // length), n_bars) - first_held, 0)
    held, held_bar = _expand(n_held, first_held)
    onset = (start >= 0) & (start < limit)
    offset = end <= limit
    bar_lines = np.arange(n_groups * n_bars) * 4
    keys = np.concatenate((
        bar_lines * sub_max,
        ((group[held] * n_bars + held_bar) * 4 + 1) * sub_max + pitch[held],
        ((group[onset] * n_bars + start[onset] // length[onset]) * 4 + 2) * sub_max + start[onset] * 256 + 128 + pitch[onset],
        ((group[offset] * n_bars + (end[offset] - 1) // length[offset]) * 4 + 2) * sub_max + end[offset] * 256 + pitch[offset],
        (bar_lines + 3) * sub_max,
    ))  # fmt: skip
    keys.sort()
    sub = keys % sub_max
    slot = keys // sub_max
    group_bar = slot >> 2
    slot &= 3
    word = np.select((slot == 0, slot == 1, slot == 3, sub & 128 > 0), (_BAR_START, _HOLD + sub, _BAR_END, _ON + (sub & 127)), _OFF + (sub & 127))
    # TIME_DELTA words before each event: the steps since the event before it in the bar, or the bar line
    event = slot == 2
    time = sub >> 8
    since = group_bar % n_bars * group_length[group_bar // n_bars]
    since[1:] = np.where(event[:-1], time[:-1], since[1:])
    gap = np.where(event, time - since, 0)
    longest = V.max_time_delta_steps(grid)
    n_delta = gap // longest + (gap % longest > 0)
    size = n_delta + 1
    stop = np.cumsum(size)
    ids = np.empty(int(stop[-1]), np.int64)
    ids[stop - 1] = word
    item, k = _expand(n_delta, np.zeros(len(n_delta), np.int64))
    ids[stop[item] - size[item] + k] = np.where(k < gap[item] // longest, _DELTA + longest, _DELTA + gap[item] % longest)
    words = _words(grid)[ids].tolist()
    bounds = np.concatenate(([0], stop))[np.searchsorted(group_bar, np.arange(n_groups + 1) * n_bars)].tolist()
    return [" ".join(words[a:b]) for a, b in itertools.pairwise(bounds)]
