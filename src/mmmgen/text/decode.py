"""MMM text becomes music here: ``text_to_piece`` / ``text_to_score`` (the decoding half of the codec).

Any word sequence decodes: lenient decoding skips what it cannot use and counts it by kind in
``Piece.issues``; strict decoding raises ``MMMDecodeError`` naming the problem and the word.

Text written by the tutorial's encoder (float ``TIME_DELTA`` values, ``BPM=`` words) reads as the
tutorial's own decoder reads it: every ``NOTE_ON`` in a bar becomes an audible note. A ``NOTE_ON``
of a sounding pitch ends the sounding note there and starts a new one; a ``NOTE_OFF`` of a silent
pitch is ignored; a ``NOTE_OFF`` at the instant of its ``NOTE_ON`` leaves the note waiting for a
later ``NOTE_OFF`` of that pitch in the bar (the tutorial's decoder lets the last ``NOTE_OFF``
set the end) and otherwise gives it the shortest grid length; a note no ``NOTE_OFF`` ends lasts
to the bar line (or into the next bar's ``NOTE_HOLD``). Float time deltas add up exactly and are
rounded to the grid where they land, so many small deltas do not drift. Each repair is counted in
``Piece.issues``. mmmgen's own text never needs any of this and decodes as it always did.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction

from mmmgen.errors import MMMGenError
from mmmgen.text import vocab as V
from mmmgen.text.chord_track import spans_from_changes
from mmmgen.text.chords import Chord, ChordSpan
from mmmgen.text.vocab import bar_steps

DEFAULT_TPQ = 480


class MMMDecodeError(MMMGenError, ValueError):
    """Raised by strict decoding: says what is wrong and at which word."""


@dataclass
class Track:
    """A decoded track: notes as ``(pitch, start, end, velocity)`` in grid steps from the piece start."""

    program: int = 0
    is_drum: bool = False
    density: int | None = None
    n_bars: int = 0
    notes: list[tuple[int, int, int, int]] = field(default_factory=list)
    changes: list[tuple[int, Chord]] | None = None  # the chord track's (step, chord) changes; None: a note track


@dataclass
class Piece:
    """What a text says: meter, genre, tracks; and what the decoder had to skip (``issues``)."""

    time_signature: tuple[int, int] = (4, 4)
    genre: str | None = None
    tempo: float | None = None
    tracks: list[Track] = field(default_factory=list)  # the note tracks (the chord track is ``chords``)
    issues: Counter = field(default_factory=Counter)
    chords: list[ChordSpan] = field(default_factory=list)  # the chord track's chords, in quarter notes
    chord_bars: int = 0  # bars of the chord track (0: none)

    @property
    def n_bars(self) -> int:
        return max((t.n_bars for t in self.tracks), default=self.chord_bars)


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
        self.zero: dict[int, tuple[int, int]] = {}  # closed at its onset; a later NOTE_OFF may still end it
        self.exact: int | Fraction = 0  # time since the bar start in exact grid steps (float deltas add up)
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
            self._close_track()
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
            bpm = float(value)
        except (TypeError, ValueError):
            bpm = math.nan
        if not (math.isfinite(bpm) and bpm > 0):
            self.problem("bad BPM")
        else:
            self.piece.tempo = bpm

    def _on_track_start(self, _):
        if self.track is not None:
            self.problem("missing TRACK_END")
            self._close_track()
        self.track = Track()
        self.t = self.bar_start = 0

    def _on_inst(self, value):
        parsed = (0, False) if value == V.CHORDS else V.parse_inst(value)
        if self.track is None or parsed is None or self.track.n_bars or self.in_bar:
            self.problem("misplaced or bad INST")
        else:
            self.track.program, self.track.is_drum = parsed
            self.track.changes = [] if value == V.CHORDS else None

    def _on_chord(self, value):
        chord = V.parse_chord_value(value)
        if not self.in_bar or self.track.changes is None or chord is None:
            self.problem("misplaced or bad CHORD")
            return
        self._end_head()
        self.track.changes.append((self.t, chord))

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
        self.exact = 0

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
        if not self.in_bar or pitch is None or self.track.changes is not None:
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
        if pitch in self.zero:
            self._add_short(pitch, *self.zero.pop(pitch), self.bar_start + self.bar_len)
        self.open[pitch] = (self.t, self.velocity)

    def _on_note_off(self, value):
        pitch = self._in_bar_value(value, V.NOTE_OFF)
        if pitch is None:
            return
        self._end_head()
        if pitch in self.zero:  # ends the note closed at its onset, as in the tutorial's decoder
            if self.zero[pitch][0] < self.t:
                self._add(pitch, self.zero[pitch][0], self.t, self.zero.pop(pitch)[1])
            return
        if pitch not in self.open:
            self.problem("NOTE_OFF without NOTE_ON")
            return
        self._close(pitch, self.t)

    def _on_time_delta(self, value):
        steps = V.time_delta_exact(value or "", self.grid)
        if not self.in_bar or steps is None or round(steps) < 0:
            self.problem("misplaced or bad TIME_DELTA")
            return
        self._end_head()
        exact = self.exact + max(steps, 0)
        if round(exact) > self.bar_len:
            self.problem("TIME_DELTA past the bar end")
            exact = self.bar_len
        self.exact = exact
        self.t = self.bar_start + round(exact)

    # helpers
    def _end_head(self) -> None:
        if self.holding:
            self.holding = False
            for pitch, (start, vel) in self.carry.items():  # not held: ends at the bar line
                if start < self.bar_start:
                    self._add(pitch, start, self.bar_start, vel)
                else:  # begun at the very end of the last bar
                    self.problem("note of zero length")
                    self._add_short(pitch, start, vel, self.bar_start)
            self.carry = {}

    def _close(self, pitch: int, time: int) -> None:
        start, vel = self.open.pop(pitch)
        if time <= start:
            self.problem("note of zero length")
            self.zero[pitch] = (start, vel)
            return
        self._add(pitch, start, time, vel)

    def _add(self, pitch: int, start: int, end: int, vel: int) -> None:
        if end > start:
            self.track.notes.append((pitch, start, end, vel))

    def _add_short(self, pitch: int, start: int, vel: int, bar_end: int) -> None:
        """A note of the shortest grid length at ``start``, kept inside its bar, which ends at
        ``bar_end`` (synthesizers drop zero-length notes)."""
        start = max(min(start, bar_end - 1), 0)
        self._add(pitch, start, start + 1, vel)

    def _end_bar(self) -> None:
        self._end_head()
        for pitch, (start, vel) in self.zero.items():
            self._add_short(pitch, start, vel, self.bar_start + self.bar_len)
        self.zero = {}
        self.carry, self.open = self.open, {}
        self.in_bar = False
        self.track.n_bars += 1
        self.t = self.bar_start = self.track.n_bars * self.bar_len

    def _end_track(self) -> None:
        self.holding = True  # a carry nobody holds ends at the last bar line
        self._end_head()
        if self.track.changes is not None:  # the chord track: chords, not a track of notes
            self.piece.chords = spans_from_changes(self.track.changes, self.track.n_bars * self.bar_len, self.grid)
            self.piece.chord_bars = self.track.n_bars
        else:
            self.piece.tracks.append(self.track)
        self.track, self.open, self.carry = None, {}, {}

    def _close_track(self) -> None:
        """End the current track where the text broke off (a missing ``BAR_END`` too)."""
        if self.in_bar:
            self.problem("missing BAR_END")
            self._end_bar()
        self._end_track()

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
    text too (float ``TIME_DELTA`` values, ``BPM=``, ``PIECE_END``) and bar-fill text (``FILL_IN``
    placeholders get their ``FILL_START .. FILL_END`` contents).
    """
    if V.FILL_IN in text:  # bar-fill text: put the fills back first
        from mmmgen.text.fill import resolve_fills

        text = resolve_fills(text)
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
    from symusic import Note, Score, Tempo, TextMeta, TimeSignature
    from symusic import Track as SymTrack

    tpq = tpq if tpq % grid == 0 else grid * 40
    scale = tpq // grid
    score = Score(tpq)
    score.time_signatures.append(TimeSignature(0, *piece.time_signature))
    score.tempos.append(Tempo(0, qpm=float(tempo or piece.tempo or 120.0)))
    for span in piece.chords:  # the chord track sounds nothing: its chords become markers
        if not span.chord.is_none:
            score.markers.append(TextMeta(round(span.start * tpq), span.chord.label))
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
