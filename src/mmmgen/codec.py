"""MIDI becomes MMM text here (and back): ``score_to_texts`` / ``text_to_score``.

The codec is pure: a ``symusic.Score`` in, window texts out, and any word sequence back to a
valid score. Text <-> token ids is ``tokenizer.py``'s job; the words come from ``vocab.py``.

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

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from mmmgen import vocab as V
from mmmgen.config import CodecConfig
from mmmgen.errors import MMMGenError

DEFAULT_TPQ = 480


class MMMDecodeError(MMMGenError, ValueError):
    """Raised by strict decoding: says what is wrong and at which word."""


@dataclass
class TrackNotes:
    """One track of a window: notes as ``(pitch, start, end[, velocity])`` in grid steps."""

    program: int
    is_drum: bool
    notes: np.ndarray  # int64 array (n, 4): pitch, start, end, velocity; sorted by start, pitch

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
def bar_steps(time_signature: tuple[int, int], grid: int) -> int:
    """Grid steps in one bar of ``numerator/denominator`` at ``grid`` steps per quarter."""
    numerator, denominator = time_signature
    return numerator * grid * 4 // denominator


def quantize_notes(notes: dict[str, np.ndarray], tpq: int, grid: int) -> np.ndarray:
    """Notes of a track (symusic ``notes.numpy()``) on the grid, cleaned so text can hold them.

    Onsets and offsets snap to the nearest step; notes shorter than a step last one step; a
    re-struck pitch cuts the previous note of that pitch (text cannot hold two at once); exact
    duplicates are dropped. Returns an (n, 4) int64 array ``pitch, start, end, velocity`` sorted
    by start then pitch.
    """
    start = np.rint(notes["time"] * grid / tpq).astype(np.int64)
    end = np.rint((notes["time"] + notes["duration"]) * grid / tpq).astype(np.int64)
    end = np.maximum(end, start + 1)
    arr = np.stack([notes["pitch"].astype(np.int64), start, end, notes["velocity"].astype(np.int64)], 1)
    if len(arr) == 0:
        return arr.reshape(0, 4)
    arr = arr[np.lexsort((-arr[:, 2], arr[:, 1], arr[:, 0]))]  # by pitch, start, longest first
    same_pitch_next = arr[1:, 0] == arr[:-1, 0]
    keep = np.ones(len(arr), bool)
    keep[1:] = ~(same_pitch_next & (arr[1:, 1] == arr[:-1, 1]))  # duplicate onset: keep longest
    arr = arr[keep]
    same_pitch_next = arr[1:, 0] == arr[:-1, 0]
    overlap = same_pitch_next & (arr[1:, 1] < arr[:-1, 2])
    arr[:-1, 2] = np.where(overlap, arr[1:, 1], arr[:-1, 2])
    return arr[np.lexsort((arr[:, 0], arr[:, 1]))]


def meter_segments(score, grid: int) -> list[tuple[int, int, tuple[int, int]]]:
    """``(start_step, n_bars, (num, den))`` stretches of constant meter covering the score.

    No time signature means 4/4. A meter change mid-bar starts a new segment there (the partial
    bar before it is dropped). Meters the vocabulary cannot spell are returned too; callers skip them.
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
    end_tick = max((int((t.notes.numpy()["time"] + t.notes.numpy()["duration"]).max()) for t in score.tracks if len(t.notes)), default=0)
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


# --- encoder -----------------------------------------------------------------------------------
def score_to_windows(score, config: CodecConfig | None = None) -> list[Window]:
    """Cut a score into windows of ``config.bars`` bars every ``config.hop`` bars.

    Windows never cross a meter change and cover the whole score: the last window of a segment
    (or a segment shorter than one window) is padded with silent bars to ``config.bars`` bars. Tracks without notes in a window are left
    out of it; windows with fewer than ``config.min_notes`` notes are dropped.
    """
    config = config or CodecConfig()
    grid, tpq = config.grid, score.tpq
    tracks = [
        (t.program, t.is_drum, quantize_notes(t.notes.numpy(), tpq, grid))
        for t in score.tracks
        if len(t.notes) > 0
    ]
    windows: list[Window] = []
    bar_index = 0
    for seg_start, n_bars, meter in meter_segments(score, grid):
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
            window = Window(meter, config.bars, length, [], bar_index + first_bar)
            for program, is_drum, notes in tracks:
                cut = _clip_notes(notes, w0, w1)
                if len(cut):
                    window.tracks.append(TrackNotes(program, is_drum, cut))
            if window.n_notes >= max(config.min_notes, 1):
                windows.append(window)
        bar_index += n_bars
    return windows


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


def track_to_bar_texts(track: TrackNotes, n_bars: int, bar_len: int, grid: int) -> list[str]:
    """The words of each bar of a track, ``BAR_START ... BAR_END`` included."""
    notes = track.notes
    bars: list[str] = []
    for b in range(n_bars):
        b0, b1 = b * bar_len, (b + 1) * bar_len
        words = [V.BAR_START]
        held = notes[(notes[:, 1] < b0) & (notes[:, 2] > b0)]
        words += [V.note_hold(int(p)) for p in sorted(held[:, 0])]
        events: list[tuple[int, int, int]] = []  # (time, 0=off / 1=on, pitch)
        for pitch, start, end, _ in notes[(notes[:, 2] > b0) & (notes[:, 1] < b1)]:
            if start >= b0:
                events.append((int(start), 1, int(pitch)))
            if end <= b1:
                events.append((int(end), 0, int(pitch)))
        t = b0
        for time, is_on, pitch in sorted(events):
            words += _time_delta_words(time - t, grid)
            t = time
            words.append(V.note_on(pitch) if is_on else V.note_off(pitch))
        words.append(V.BAR_END)
        bars.append(" ".join(words))
    return bars


def _time_delta_words(steps: int, grid: int) -> list[str]:
    longest = V.max_time_delta_steps(grid)
    words = [V.time_delta(longest, grid)] * (steps // longest)
    if steps % longest:
        words.append(V.time_delta(steps % longest, grid))
    return words


def density_level(n_notes: int, edges: list[float] | np.ndarray | None) -> int:
    """The ``DENSITY`` level of a track with ``n_notes`` notes (``len(edges) + 1`` levels)."""
    if edges is None or len(edges) == 0:
        return 0
    return int(np.searchsorted(np.asarray(edges), n_notes, side="right"))


def window_to_parts(window: Window, grid: int = 12) -> list[tuple[str, int, str]]:
    """Per track: ``(INST word, notes in the window, bar texts)``, the costly part of encoding.

    Kept apart from ``parts_to_text`` so the density level can be chosen later, once the
    dataset-wide density edges are known.
    """
    return [
        (track.word, window.note_count(track), " ".join(track_to_bar_texts(track, window.n_bars, window.bar_steps, grid)))
        for track in window.tracks
    ]


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
        words += [V.TRACK_START, inst_word, V.density(density_level(n_notes, density_edges)), bars, V.TRACK_END]
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


# --- decoder -----------------------------------------------------------------------------------
@dataclass
class Track:
    """A decoded track: notes as ``(pitch, start, end, velocity)`` in grid steps from the piece start."""

    program: int = 0
    is_drum: bool = False
    density: int | None = None
    n_bars: int = 0
    notes: list[tuple[int, int, int, int]] = field(default_factory=list)


@dataclass
class Piece:
    """What a text says: meter, genre, tracks; and what the decoder had to skip (``issues``)."""

    time_signature: tuple[int, int] = (4, 4)
    genre: str | None = None
    tempo: float | None = None
    tracks: list[Track] = field(default_factory=list)
    issues: Counter = field(default_factory=Counter)

    @property
    def n_bars(self) -> int:
        return max((t.n_bars for t in self.tracks), default=0)


class _Decoder:
    """Reads words one by one; lenient (skip and count) or strict (raise)."""

    def __init__(self, grid: int, strict: bool):
        self.grid, self.strict = grid, strict
        self.piece = Piece()
        self.track: Track | None = None
        self.in_bar = False
        self.bar_start = 0
        self.t = 0
        self.open: dict[int, tuple[int, int]] = {}  # pitch -> (start, velocity)
        self.carry: dict[int, tuple[int, int]] = {}  # open at the last BAR_END
        self.holding = False  # still at the head of the bar, where NOTE_HOLD may appear
        self.velocity = 80
        self.pos = 0
        self.word = ""

    @property
    def bar_len(self) -> int:
        return bar_steps(self.piece.time_signature, self.grid)

    def problem(self, kind: str) -> None:
        if self.strict:
            msg = f"{kind} at word {self.pos} ({self.word!r})"
            raise MMMDecodeError(msg)
        self.piece.issues[kind] += 1

    def feed(self, pos: int, word: str) -> bool:
        """Handle one word; False once the piece has ended."""
        self.pos, self.word = pos, word
        w = V.parse_word(word)
        handler = getattr(self, f"_on_{w.kind.lower()}", None)
        if handler is None or w.kind in (V.FILL_IN, V.FILL_START, V.FILL_END):
            self.problem("unknown word")
            return True
        return handler(w.value) is not False

    # structure
    def _on_piece_start(self, _):
        if self.pos != 0:
            self.problem("PIECE_START inside a piece")

    def _on_piece_end(self, _):
        if self.track is not None:
            self.problem("missing TRACK_END")
            self._end_track()
        return False

    def _on_time_signature(self, value):
        meter = V.parse_time_signature(value)
        if meter is None or self.piece.tracks or self.track is not None:
            self.problem("bad TIME_SIGNATURE")
        else:
            self.piece.time_signature = meter

    def _on_genre(self, value):
        self.piece.genre = value

    def _on_bpm(self, value):
        try:
            self.piece.tempo = float(value)
        except (TypeError, ValueError):
            self.problem("bad BPM")

    def _on_track_start(self, _):
        if self.track is not None:
            self.problem("missing TRACK_END")
            self._end_track()
        self.track = Track()
        self.t = self.bar_start = 0

    def _on_inst(self, value):
        parsed = V.parse_inst(value)
        if self.track is None or parsed is None or self.track.n_bars or self.in_bar:
            self.problem("misplaced or bad INST")
        else:
            self.track.program, self.track.is_drum = parsed

    def _on_density(self, value):
        level = V.parse_int(value, 0, 10_000)
        if self.track is None or level is None or self.track.n_bars or self.in_bar:
            self.problem("misplaced or bad DENSITY")
        else:
            self.track.density = level

    def _on_velocity(self, value):
        level = V.parse_int(value, 0, 127)
        if level is None:
            self.problem("bad VELOCITY")
        else:
            self.velocity = level

    def _on_bar_start(self, _):
        if self.track is None:
            self.problem("BAR_START outside a track")
            return
        if self.in_bar:
            self.problem("missing BAR_END")
            self._end_bar()
        self.in_bar, self.holding = True, True
        self.bar_start = self.t = self.track.n_bars * self.bar_len

    def _on_bar_end(self, _):
        if not self.in_bar:
            self.problem("BAR_END outside a bar")
            return
        self._end_bar()

    def _on_track_end(self, _):
        if self.track is None:
            self.problem("TRACK_END outside a track")
            return
        if self.in_bar:
            self.problem("missing BAR_END")
            self._end_bar()
        self._end_track()

    # notes and time
    def _in_bar_value(self, value, kind: str) -> int | None:
        pitch = V.parse_int(value, 0, V.N_PITCHES - 1)
        if not self.in_bar or pitch is None:
            self.problem(f"misplaced or bad {kind}")
            return None
        return pitch

    def _on_note_hold(self, value):
        pitch = self._in_bar_value(value, V.NOTE_HOLD)
        if pitch is None:
            return
        if not self.holding:
            self.problem("NOTE_HOLD after the head of the bar")
        if pitch in self.carry:
            self.open[pitch] = self.carry.pop(pitch)
        elif pitch not in self.open:
            self.open[pitch] = (self.t, self.velocity)  # nothing to continue: starts here

    def _on_note_on(self, value):
        pitch = self._in_bar_value(value, V.NOTE_ON)
        if pitch is None:
            return
        self._end_head()
        if pitch in self.open:
            self.problem("NOTE_ON of a sounding pitch")
            self._close(pitch, self.t)
        self.open[pitch] = (self.t, self.velocity)

    def _on_note_off(self, value):
        pitch = self._in_bar_value(value, V.NOTE_OFF)
        if pitch is None:
            return
        self._end_head()
        if pitch not in self.open:
            self.problem("NOTE_OFF without NOTE_ON")
            return
        self._close(pitch, self.t)

    def _on_time_delta(self, value):
        steps = V.parse_time_delta(value or "", self.grid)
        if not self.in_bar or steps is None or steps < 0:
            self.problem("misplaced or bad TIME_DELTA")
            return
        self._end_head()
        bar_end = self.bar_start + self.bar_len
        if self.t + steps > bar_end:
            self.problem("TIME_DELTA past the bar end")
        self.t = min(self.t + steps, bar_end)

    # helpers
    def _end_head(self) -> None:
        if self.holding:
            self.holding = False
            for pitch, (start, vel) in self.carry.items():  # not held: ends at the bar line
                self._add(pitch, start, self.bar_start, vel)
            self.carry = {}

    def _close(self, pitch: int, time: int) -> None:
        start, vel = self.open.pop(pitch)
        if time <= start:
            self.problem("note of zero length")
            return
        self._add(pitch, start, time, vel)

    def _add(self, pitch: int, start: int, end: int, vel: int) -> None:
        if end > start:
            self.track.notes.append((pitch, start, end, vel))

    def _end_bar(self) -> None:
        self._end_head()
        self.carry, self.open = self.open, {}
        self.in_bar = False
        self.track.n_bars += 1
        self.t = self.bar_start = self.track.n_bars * self.bar_len

    def _end_track(self) -> None:
        self.holding = True  # a carry nobody holds ends at the last bar line
        self._end_head()
        self.piece.tracks.append(self.track)
        self.track, self.open, self.carry = None, {}, {}

    def finish(self) -> Piece:
        if self.track is not None:
            self.problem("missing TRACK_END")
            if self.in_bar:
                self._end_bar()
            self._end_track()
        return self.piece


def text_to_piece(text: str, grid: int = 12, strict: bool = False) -> Piece:
    """Parse MMM text into a ``Piece``. Never fails unless ``strict``.

    Lenient decoding skips what it cannot use and counts it in ``Piece.issues``; strict decoding
    raises ``MMMDecodeError`` naming the problem and the word position. Reads the tutorial's
    text too (float ``TIME_DELTA`` values, ``BPM=``, ``PIECE_END``).
    """
    decoder = _Decoder(grid, strict)
    words = text.split()
    if strict and words and words[0] != V.PIECE_START:
        msg = f"text must begin with {V.PIECE_START}, not {words[0]!r}"
        raise MMMDecodeError(msg)
    for pos, word in enumerate(words):
        if not decoder.feed(pos, word):
            break
    return decoder.finish()


def piece_to_score(piece: Piece, grid: int = 12, tempo: float | None = None, tpq: int = DEFAULT_TPQ):
    """A ``symusic.Score`` of a piece: one track per text track, drums flagged, one tempo."""
    from symusic import Note, Score, Tempo, TimeSignature
    from symusic import Track as SymTrack

    tpq = tpq if tpq % grid == 0 else grid * 40
    scale = tpq // grid
    score = Score(tpq)
    score.time_signatures.append(TimeSignature(0, *piece.time_signature))
    score.tempos.append(Tempo(0, qpm=float(tempo or piece.tempo or 120.0)))
    for i, track in enumerate(piece.tracks):
        name = "Drums" if track.is_drum else f"Track {i + 1}"
        sym = SymTrack(name=name, program=track.program, is_drum=track.is_drum)
        for pitch, start, end, vel in track.notes:
            sym.notes.append(Note(start * scale, (end - start) * scale, pitch, vel))
        sym.notes.sort()
        score.tracks.append(sym)
    return score


def text_to_score(text: str, grid: int = 12, strict: bool = False, tempo: float | None = None):
    """Decode MMM text to a ``symusic.Score`` (see ``text_to_piece``)."""
    return piece_to_score(text_to_piece(text, grid, strict), grid, tempo)
