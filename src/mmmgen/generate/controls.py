"""Musical controls: steer a track without retraining, as more rules beside the grammar's.

``Controls`` (a frozen value) says what the musician asks of the next track: a scale
(``"C:major"``, ``"A:minor"``, a church mode, major or minor pentatonic), a pitch range, a
maximum polyphony, and the shortest and longest note (in quarter notes: 0.25 is a sixteenth).
Each control is ONE rule ``rule(state, table) -> bool mask`` like the rules of ``grammar.py``,
tested alone; ``grammar.allowed`` applies them when ``TrackSpec.controls`` is set, so every
sampled track obeys all of them. Drum tracks are exempt: a kit has no scale, range, chords or
note lengths in the musical sense.

How the note-length rules meet the grammar's bars: a note still sounding at ``BAR_END`` is carried
to the next bar; there ``NOTE_HOLD`` continues it, or it ends at the bar line. So the shortest
note may only start when the track has that much time left, a young note carried over must be
held, and may not end before its time; the longest note bounds how far time may advance while
it sounds, whether it may be held, and whether the bar may end (a carried note lasts to the bar
line). In a bar-fill, a note the bar after the fill would continue (its ``NOTE_HOLD``) is closed
before the fill ends, so the longest note holds there too.

A request no word can satisfy (a scale and range with no common pitch, a shortest note longer
than the longest or than a bar) raises ``ControlError`` before sampling (``Controls.check``).
``estimate_key`` names the key of some music (Krumhansl-Schmuckler key profiles).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from mmmgen.generate.grammar import IN_BAR, TrackState, VocabTable, allowed
from mmmgen.generate.sampling import GenerationError
from mmmgen.text import vocab as V
from mmmgen.text.vocab import bar_steps

# semitones above the tonic of each scale the lock knows
SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "ionian": (0, 2, 4, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "aeolian": (0, 2, 3, 5, 7, 8, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
    "major-pentatonic": (0, 2, 4, 7, 9),
    "minor-pentatonic": (0, 3, 5, 7, 10),
}
TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_TONIC = {**{t.lower(): i for i, t in enumerate(TONICS)}, "db": 1, "d#": 3, "gb": 6, "g#": 8, "a#": 10, "cb": 11, "e#": 5, "fb": 4, "b#": 0}


class ControlError(GenerationError):
    """Controls that cannot be met (a bad scale name, no pitch left, an impossible note length)."""


@lru_cache(maxsize=256)
def scale_tonic(text: str) -> tuple[int, str]:
    """``(tonic pitch class, mode)`` of ``"TONIC:MODE"`` (``F#:dorian`` -> ``(6, "dorian")``)."""
    tonic, sep, mode = re.sub(r"\s+", " ", text.strip()).replace(" ", ":", 1).partition(":")
    mode = mode.strip().lower().replace(" ", "-").replace("_", "-")
    mode = {"pentatonic": "major-pentatonic", "pentatonic-major": "major-pentatonic", "pentatonic-minor": "minor-pentatonic"}.get(mode, mode)
    if not sep or tonic.lower() not in _TONIC or mode not in SCALES:
        msg = f"bad scale {text!r}: use TONIC:MODE with a tonic {'/'.join(TONICS)} and a mode {', '.join(SCALES)}"
        raise ControlError(msg)
    return _TONIC[tonic.lower()], mode


@lru_cache(maxsize=256)
def parse_scale(text: str) -> frozenset[int]:
    """The pitch classes (0 = C) of ``"TONIC:MODE"``, e.g. ``C:major``, ``F#:dorian``, ``A:minor-pentatonic``."""
    tonic, mode = scale_tonic(text)
    return frozenset((tonic + step) % 12 for step in SCALES[mode])


def parse_pitch_range(text: str) -> tuple[int, int]:
    """``"48-72"`` -> ``(48, 72)`` (MIDI pitches, inclusive)."""
    low, sep, high = text.strip().partition("-")
    try:
        pair = (int(low), int(high))
    except ValueError:
        pair = None
    if not sep or pair is None:
        msg = f"bad pitch range {text!r}: use LOW-HIGH in MIDI pitches, e.g. 48-72"
        raise ControlError(msg)
    return pair


@dataclass(frozen=True)
class Controls:
    """What the next track must obey (None = free). Note lengths are in quarter notes."""

    scale: str | None = None  # "C:major", "A:minor", "D:dorian", "E:minor-pentatonic", ...
    pitch_range: tuple[int, int] | None = None  # lowest and highest MIDI pitch, inclusive
    max_polyphony: int | None = None  # notes sounding at once
    min_note: float | None = None  # shortest note, quarter notes (0.25 = a sixteenth)
    max_note: float | None = None  # longest note, quarter notes
    pitches: np.ndarray = field(init=False, repr=False, compare=False)  # allowed pitches (bool per MIDI pitch)

    def __post_init__(self) -> None:
        allowed = np.ones(V.N_PITCHES, bool)
        if self.scale is not None:
            classes = parse_scale(self.scale)
            allowed &= np.isin(np.arange(V.N_PITCHES) % 12, sorted(classes))
        if self.pitch_range is not None:
            low, high = self.pitch_range
            if not 0 <= low <= high < V.N_PITCHES:
                msg = f"pitch range must be LOW-HIGH within 0-127 with LOW <= HIGH, got {low}-{high}"
                raise ControlError(msg)
            object.__setattr__(self, "pitch_range", (int(low), int(high)))
            allowed[: low] = False
            allowed[high + 1 :] = False
        if not allowed.any():
            msg = f"scale {self.scale} and pitch range {self.pitch_range[0]}-{self.pitch_range[1]} have no pitch in common"
            raise ControlError(msg)
        if self.max_polyphony is not None and self.max_polyphony < 1:
            msg = f"max polyphony must be at least 1, got {self.max_polyphony}"
            raise ControlError(msg)
        for name in ("min_note", "max_note"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                msg = f"{name.replace('_', ' ')} must be a positive number of quarter notes, got {value}"
                raise ControlError(msg)
        if self.min_note is not None and self.max_note is not None and self.min_note > self.max_note:
            msg = f"the shortest note ({self.min_note} quarters) is longer than the longest ({self.max_note})"
            raise ControlError(msg)
        allowed.flags.writeable = False
        object.__setattr__(self, "pitches", allowed)

    @property
    def active(self) -> bool:
        return any(getattr(self, n) is not None for n in ("scale", "pitch_range", "max_polyphony", "min_note", "max_note"))

    def steps(self, grid: int) -> tuple[int | None, int | None]:
        """The shortest and longest note in grid steps (at least one step each)."""
        low = None if self.min_note is None else max(1, round(self.min_note * grid))
        high = None if self.max_note is None else max(1, round(self.max_note * grid))
        return low, high

    def check(self, time_signature: tuple[int, int], grid: int) -> None:
        """Raise ``ControlError`` before sampling when a track in this meter cannot obey."""
        low, high = self.steps(grid)
        bar = bar_steps(time_signature, grid)
        if low is not None and low > bar:
            msg = f"the shortest note ({self.min_note} quarters) is longer than a bar of {time_signature[0]}/{time_signature[1]}"
            raise ControlError(msg)
        if low is not None and high is not None and low > high:
            msg = f"on a grid of {grid} steps per quarter the shortest note ({self.min_note}) is longer than the longest ({self.max_note})"
            raise ControlError(msg)

    def narrow(self, s: TrackState, v: VocabTable, mask: np.ndarray) -> np.ndarray:
        """``mask`` and every control rule; never empty (an empty one is a ``ControlError``)."""
        if s.phase != IN_BAR or s.is_drum:
            return mask
        grammar = mask.copy()
        for rule in CONTROL_RULES:
            mask &= rule(s, v)
        if not mask.any() and s.words_in_bar >= s.spec.max_words_per_bar:
            # past the bar's word budget only closing words are left, and a note too young (or
            # just started) may not close yet: let time pass instead (time only moves on: bounded)
            mask = allowed(replace(s, words_in_bar=0), v) & v.family("time_delta")
        elif not mask.any() and not grammar.any():
            return mask
        if not mask.any():
            msg = f"the controls ({self.describe()}) leave no word at step {s.t} of bar {s.bars_done + 1}"
            raise ControlError(msg)
        return mask

    def narrow_chords(self, s: TrackState, v: VocabTable, mask: np.ndarray) -> np.ndarray:
        """``mask`` (the chord track's grammar) and ``chord_scale_rule``."""
        return mask & chord_scale_rule(s, v)

    def describe(self) -> str:
        parts = [f"{n.replace('_', ' ')} {getattr(self, n)}" for n in ("scale", "pitch_range", "max_polyphony", "min_note", "max_note")]
        return ", ".join(p for p in parts if not p.endswith(" None")) or "none"


# --- the rules: each returns the words it allows (True) among all words ---------------------
def _free(v: VocabTable) -> np.ndarray:
    return v.cached("all", lambda: range(v.size))


def _controls(s: TrackState) -> Controls | None:
    c = s.spec.controls
    return None if c is None or s.is_drum or s.phase != IN_BAR else c


def scale_rule(s: TrackState, v: VocabTable) -> np.ndarray:
    """NOTE_ON only for a pitch of the scale (a note already sounding may still be held)."""
    c = _controls(s)
    if c is None or c.scale is None:
        return _free(v)
    classes = parse_scale(c.scale)
    return v.cached(("scale", classes), lambda: _ban(v, v.note_on[[p for p in range(V.N_PITCHES) if p % 12 not in classes]]))


def range_rule(s: TrackState, v: VocabTable) -> np.ndarray:
    """NOTE_ON only for a pitch within the range."""
    c = _controls(s)
    if c is None or c.pitch_range is None:
        return _free(v)
    low, high = c.pitch_range
    return v.cached(("range", low, high), lambda: _ban(v, v.note_on[[p for p in range(V.N_PITCHES) if not low <= p <= high]]))


def polyphony_rule(s: TrackState, v: VocabTable) -> np.ndarray:
    """No NOTE_ON or NOTE_HOLD while ``max_polyphony`` notes sound."""
    c = _controls(s)
    if c is None or c.max_polyphony is None or len(s.open) < c.max_polyphony:
        return _free(v)
    return v.cached("no_new_notes", lambda: _ban(v, np.concatenate([v.note_on, v.note_hold])))


def min_note_rule(s: TrackState, v: VocabTable) -> np.ndarray:
    """The shortest note: NOTE_OFF only once a note has lasted it, NOTE_ON only while the track
    has that much time left, a young carried note must be held, and an empty track's last bar
    leaves room for one such note. While a note is too young to end, time moves on at least
    until one may end (bounded by the longest note and the bar)."""
    c = _controls(s)
    if c is None or c.min_note is None:
        return _free(v)
    low, _ = c.steps(s.grid)
    now, bar_len = s.now, s.bar_len
    if s.head and s.carry:  # a carried note too young to end at the bar line is held
        young = [p for p in s.carry if now - s.born.get(p, now) < low]
        if young:
            m = np.zeros(v.size + 1, bool)
            m[v.note_hold[young]] = True
            return m[: v.size]
    m = np.ones(v.size + 1, bool)
    young = [p for p in s.open if now - s.born.get(p, now) < low]
    if young:
        m[v.note_off[young]] = False
        # time moves on at least until the first young note may end (else the model, kept from
        # ending notes, piles up new ones), but never past the longest note or the bar
        floor = min(low - (now - s.born.get(p, now)) for p in young)
        ceiling = bar_len - s.t
        if c.max_note is not None:
            ceiling = min(ceiling, c.steps(s.grid)[1] - max(now - s.born.get(p, now) for p in s.open))
        m[v.time_delta[1 : max(min(floor, ceiling), 1)]] = False
    left = bar_len - s.t if s.spec.fill else (s.spec.n_bars - s.bars_done) * bar_len - s.t
    if left < low:
        m[v.note_on_ids] = False
    if s.last_bar and s.notes == 0 and not s.spec.fill:
        room = bar_len - s.t - low  # the time that may pass before the one note must start
        m[v.time_delta[max(room, 0) + 1 :]] = False
    m[-1] = True
    return m[: v.size]


def max_note_rule(s: TrackState, v: VocabTable) -> np.ndarray:
    """The longest note: time may not pass it while a note sounds, a note that long is not held,
    the bar may not end while a sounding note would pass it by the bar line, and a fill closes a
    note the next bar would continue."""
    c = _controls(s)
    if c is None or c.max_note is None:
        return _free(v)
    _, high = c.steps(s.grid)
    now, bar_len = s.now, s.bar_len
    m = np.ones(v.size + 1, bool)
    if s.head and s.carry:
        old = [p for p in s.carry if now - s.born.get(p, now) >= high]
        m[v.note_hold[old]] = False
    if s.open:
        oldest = max(now - s.born.get(p, now) for p in s.open)
        m[v.time_delta[max(high - oldest, 0) + 1 :]] = False
        end = s.spec.end_word
        continued = s.spec.fill and any(p in s.after for p in s.open)
        if end in v.ids and (oldest + bar_len - s.t > high or continued):
            m[v.ids[end]] = False
    m[-1] = True
    return m[: v.size]


def _ban(v: VocabTable, ids: Iterable[int]) -> np.ndarray:
    m = np.ones(v.size + 1, bool)
    m[np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.intp)] = False
    m[-1] = True
    return np.flatnonzero(m[: v.size])


CONTROL_RULES = (scale_rule, range_rule, polyphony_rule, min_note_rule, max_note_rule)


def chord_scale_rule(s: TrackState, v: VocabTable) -> np.ndarray:
    """The chord track under a scale: ``CHORD`` words only for chords whose tones (bass included) are
    all in the scale, and no-chord; the chord that opens the song's first bar and the last bar of its
    first window (the whole progression of a generated piece, which longer pieces repeat) on the tonic
    (a chord of the scale rooted on it): the progression starts and ends at home, as the tonal rule's
    bars do. Every word when no chord of the vocabulary fits."""
    c = s.spec.controls
    if c is None or c.scale is None or not s.spec.chord_track:
        return _free(v)
    classes, (tonic, _) = parse_scale(c.scale), scale_tonic(c.scale)
    home = s.phase == IN_BAR and s.words_in_bar == 0 and s.spec.first_bar == 0 and (s.bars_done == 0 or s.last_bar)

    def outside() -> list[int]:
        chords = {i: V.parse_chord_value(V.parse_word(w).value) for w, i in v.ids.items() if V.parse_word(w).kind == V.CHORD}
        fit = {i for i, ch in chords.items() if ch is not None and ch.pitch_classes <= classes and (not home or ch.root == tonic)}
        if not any(not chords[i].is_none for i in fit):
            return _free(v)
        return _ban(v, [i for i in chords if i not in fit])

    return v.cached(("chord-scale", classes, tonic, home), outside)


# --- the key of some music (Krumhansl-Schmuckler) --------------------------------------------------
# Krumhansl & Kessler (1982) probe-tone ratings of each pitch class above the tonic
KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


def estimate_key(weights: Iterable[float]) -> str:
    """The key (``"A:minor"``) whose Krumhansl-Kessler profile best correlates with the 12
    pitch-class weights (e.g. total note duration per pitch class, C first)."""
    w = np.asarray(list(weights), float)
    if w.shape != (12,) or not np.isfinite(w).all() or w.std() == 0:
        msg = "the key needs notes of more than one pitch class"
        raise ControlError(msg)
    best, name = -2.0, ""
    for mode, profile in (("major", KK_MAJOR), ("minor", KK_MINOR)):
        for tonic in range(12):
            r = float(np.corrcoef(w, np.roll(profile, tonic))[0, 1])
            if r > best:
                best, name = r, f"{TONICS[tonic]}:{mode}"
    return name


def pitch_class_weights(notes: Iterable[tuple[int, int, int, int]]) -> np.ndarray:
    """Total duration per pitch class of ``(pitch, start, end, velocity)`` notes."""
    w = np.zeros(12)
    for pitch, start, end, _ in notes:
        w[pitch % 12] += end - start
    return w


def key_of_text(text: str, grid: int = 12) -> str:
    """The estimated key of MMM text (drum tracks left out)."""
    from mmmgen.text.decode import text_to_piece

    notes = [n for t in text_to_piece(text, grid).tracks if not t.is_drum for n in t.notes]
    return estimate_key(pitch_class_weights(notes))


def fill_context(head: list[str], bars: list[list[str]], b: int, carried: set[int], filled: Iterable[int], time_signature, grid: int) -> dict:
    """What the control rules need to know of the track around a fill of bar ``b`` (0-based):
    ``ages`` of the ``carried`` notes at its bar line, the pitches the bar after it holds
    (``after``, unless that bar is ``filled`` too) and whether the track is a drum track."""
    from mmmgen.text.decode import text_to_piece
    from mmmgen.text.fill import TrackWords

    before = TrackWords(list(head), [list(bar) for bar in bars[:b]]).text()
    line = b * bar_steps(time_signature, grid)
    ages: dict[int, int] = {}
    track = text_to_piece(f"{V.PIECE_START} {V.time_signature(*time_signature)} {before}", grid).tracks
    for pitch, start, end, _ in track[0].notes if track else ():
        if end == line and pitch in carried:
            ages[pitch] = max(ages.get(pitch, 0), end - start)
    after: set[int] = set()
    if b + 1 < len(bars) and b + 1 not in set(filled):
        for word in bars[b + 1]:
            w = V.parse_word(word)
            if w.kind == V.NOTE_HOLD and (p := V.parse_int(w.value, 0, V.N_PITCHES - 1)) is not None:
                after.add(p)
    insts = [V.parse_inst(w.value) for w in map(V.parse_word, head) if w.kind == V.INST]
    program = insts[0][0] if insts and insts[0] is not None else None
    return {"ages": ages, "after": after, "is_drum": V.inst(0, True) in head, "program": program}


def violations(notes: Iterable[tuple[int, int, int]], controls: Controls, grid: int) -> list[str]:
    """What in ``(pitch, start, end)`` notes (grid steps) breaks the controls; empty when obeyed."""
    notes = sorted(notes, key=lambda n: (n[1], n[0]))
    low, high = controls.steps(grid)
    found = [f"pitch {p} at step {a}: not allowed" for p, a, _ in notes if not controls.pitches[p]]
    if low is not None:
        found += [f"pitch {p} at step {a}: {e - a} steps < {low}" for p, a, e in notes if e - a < low]
    if high is not None:
        found += [f"pitch {p} at step {a}: {e - a} steps > {high}" for p, a, e in notes if e - a > high]
    if controls.max_polyphony is not None:
        events = sorted([(a, 1) for _, a, _ in notes] + [(e, -1) for _, _, e in notes])  # ends (-1) first at a tie
        sounding = 0
        for time, change in events:
            sounding += change
            if sounding > controls.max_polyphony:
                found.append(f"{sounding} notes sound at step {time} (> {controls.max_polyphony})")
                break
    return found
