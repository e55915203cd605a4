"""The chord rule: every model plays over a chord progression, as one more mask rule beside the grammar's.

``ChordRule`` (a frozen value) holds the song's chords (``ChordSpan`` s in quarter notes from the
song's start) and a mode; ``grammar.allowed`` applies ``narrow`` when ``TrackSpec.harmony`` is set:

* ``strict``: a new note (``NOTE_ON``) is a tone of the chord sounding where it starts;
* ``loose`` (the default): on a beat start a new note is a chord tone, elsewhere a chord or
  scale tone (the ``scale`` given, else the progression's key: ``controls.estimate_key`` over
  its chord tones); a note that is not a tone of the chord at the next beat start ends by it, so
  every note a beat or longer, and every note sounding on a beat, is a chord tone;
* ``off``: no rule.

In both modes no note sounds on a beat start (or a chord change) where it is not a tone of that
beat's chord: time may not pass such a beat while the note sounds, and a note the previous bar
leaves sounding is held into the bar (``NOTE_HOLD``) only when it is a tone of the bar's first
chord. A bass line (a GM bass program 32-39, or the track the caller marks with ``bass=True``)
lands on the chord's bass note at each chord change: there it may only start that pitch class,
and time may not pass the change before one sounds. Any other track lands too (``land``): on the
first ``LAND_BEATS`` beats of each chord it sounds the root, unless the song's other tracks sound
it there (``covered``), else the third, else the fifth, else another tone they leave out; and on
a later beat where the others leave out the root or third, it fills that in; and a note it starts
on a beat below every note the others sound there (``floor``) is the chord's bass, as the lowest
voice names the chord to a listener. So the tracks spell the chord between them and the harmony is
heard, not glimpsed. A new note lies within ``LEAP`` semitones of the track's latest one. Drum
tracks and ``N`` (no chord) are free.

The rule reads the absolute time of the song: ``TrackSpec.first_bar`` (the first bar of the window
or fill being written) plus the state's time. Beats are the meter's: a quarter note in 4/4 and
3/4, a dotted quarter in 6/8 and 12/8, a half note in 2/2.

``fit_progression`` decides what a progression shorter than the song does: it repeats (a loop,
as songwriters use one), and one longer is cut at the song's end.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

import numpy as np

from mmmgen.generate.controls import ControlError, estimate_key, parse_scale
from mmmgen.generate.grammar import IN_BAR, TrackState, VocabTable
from mmmgen.text import vocab as V
from mmmgen.text.chord_track import to_steps
from mmmgen.text.chords import NO_CHORD, QUALITIES, Chord, ChordSpan
from mmmgen.text.vocab import beat_steps

CHORD_RULES = ("strict", "loose", "off")
BASS_PROGRAMS = frozenset(range(32, 40))  # GM: acoustic bass .. synth bass 2
LAND_BEATS = 2  # beats from each chord change on which every track sounds its landing tone
LEAP = 12  # semitones a new note may lie from the track's latest one: a model pushed off its favourite
# notes (by the chord, or to land on a change) would otherwise spread over every octave
ALL = np.ones(12, bool)
ALL.flags.writeable = False


def fit_progression(spans: Sequence[ChordSpan], total_beats: Fraction | float) -> list[ChordSpan]:
    """The progression over ``total_beats`` quarter notes: repeated while shorter, cut where longer."""
    spans = sorted(spans, key=lambda s: s.start)
    if not spans:
        return []
    total = Fraction(total_beats).limit_denominator(10_000)
    period = spans[-1].end
    if period <= 0:
        msg = "the chord progression has no length"
        raise ControlError(msg)
    out, shift = [], Fraction(0)
    while shift < total:
        for s in spans:
            if shift + s.start >= total:
                break
            out.append(ChordSpan(shift + s.start, min(shift + s.end, total), s.chord))
        shift += period
    return out


def progression_key(spans: Iterable[ChordSpan]) -> str | None:
    """The key (``"A:minor"``) the chords' tones suggest, weighted by duration; None without chords."""
    weights = np.zeros(12)
    for s in spans:
        for pc in s.chord.pitch_classes:
            weights[pc] += float(s.duration)
    try:
        return estimate_key(weights)
    except ControlError:
        return None


@dataclass(frozen=True)
class ChordRule:
    """The chords a track plays over (quarter notes from the song's start) and how strictly."""

    chords: tuple[ChordSpan, ...]
    mode: str = "loose"  # strict | loose | off
    scale: str | None = None  # loose: the scale of tones between beats ("C:major"); None: the progression's key
    bass: bool | None = None  # a bass line: None decides by the GM program (32-39)
    land: bool = True  # every pitched track sounds a chord tone at each chord change (so the harmony is heard)
    covered: tuple[tuple[int, frozenset[int]], ...] = ()  # (change step, pitch classes the song's other tracks sound there)
    floor: tuple[tuple[int, int], ...] = ()  # (beat or change step, the lowest pitch the other tracks sound there)
    grid: int = 12
    time_signature: tuple[int, int] = (4, 4)

    def __post_init__(self) -> None:
        if self.mode not in CHORD_RULES:
            msg = f"bad chord rule {self.mode!r}: use one of {', '.join(CHORD_RULES)}"
            raise ControlError(msg)
        if self.scale is not None:
            parse_scale(self.scale)  # a bad scale fails here, before sampling
        object.__setattr__(self, "chords", tuple(sorted(self.chords, key=lambda s: s.start)))

    @property
    def active(self) -> bool:
        return self.mode != "off" and any(not s.chord.is_none for s in self.chords)

    @cached_property
    def _starts(self) -> list[int]:
        return [to_steps(s.start, self.grid) for s in self.chords]

    @cached_property
    def _ends(self) -> list[int]:
        return [to_steps(s.end, self.grid) for s in self.chords]

    @cached_property
    def _covered(self) -> dict[int, frozenset[int]]:
        return dict(self.covered)

    @cached_property
    def _floor(self) -> dict[int, int]:
        return dict(self.floor)

    @cached_property
    def scale_classes(self) -> np.ndarray:
        """The scale of ``loose`` between beats, as 12 booleans (all when none is known)."""
        name = self.scale or progression_key(self.chords)
        out = ALL.copy() if name is None else _classes(parse_scale(name))
        out.flags.writeable = False
        return out

    def chord_at(self, step: int) -> tuple[Chord, bool]:
        """The chord at an absolute step, and whether it starts there (a chord change)."""
        k = bisect.bisect_right(self._starts, step) - 1
        if k < 0 or step >= self._ends[k]:
            return NO_CHORD, False
        return self.chords[k].chord, self._starts[k] == step

    def is_bass(self, s: TrackState) -> bool:
        return self.bass if self.bass is not None else s.program in BASS_PROGRAMS

    def sounding(self, step: int, bass: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Pitch classes that may sound at a beat or change ``step``, and those of which one must
        (at a change: the chord's bass in a bass line, a chord tone in any track when ``land``)."""
        chord, change = self.chord_at(step)
        if chord.is_none:
            return ALL, None
        if bass and change:
            tone = _classes((chord.bass_class,))
            return tone, tone
        tones = _classes(chord.pitch_classes)
        start = self._starts[bisect.bisect_right(self._starts, step) - 1]
        if not self.land:
            return tones, None
        if step - start < LAND_BEATS * beat_steps(self.time_signature, self.grid):
            return tones, self.landing(chord, step)
        if self.covered and not {chord.root, chord.third} <= self._covered.get(step, frozenset()):
            return tones, self.landing(chord, step)  # a later track fills in a root or third the others leave out
        return tones, None

    def landing(self, chord: Chord, step: int) -> np.ndarray:
        """The tones a track lands on at ``step``: the root unless the other tracks sound it there,
        else the third (the chord's second tone), else the fifth (its third tone), else another tone
        they leave out, else any chord tone (so three tracks spell the triad between them, root first)."""
        covered = self._covered.get(step, frozenset())
        fifth = (chord.root + QUALITIES[chord.quality][2]) % 12
        for wanted in ({chord.root} - covered, {chord.third} - covered, {fifth} - covered, chord.pitch_classes - covered, chord.pitch_classes):
            if wanted:
                return _classes(wanted)
        return _classes(chord.pitch_classes)

    def onsets(self, step: int, bass: bool, bar_start: int, beat: int) -> np.ndarray:
        """Pitch classes a new note may have at ``step``."""
        chord, change = self.chord_at(step)
        if chord.is_none:
            return ALL
        if change or (step - bar_start) % beat == 0:
            return self.sounding(step, bass)[0]
        tones = _classes(chord.pitch_classes)
        return tones if self.mode == "strict" else tones | self.scale_classes

    def boundaries(self, lo: int, hi: int, bar_start: int, beat: int) -> list[int]:
        """The beat starts and chord changes in ``[lo, hi)`` (absolute steps)."""
        first = bar_start + -(-(lo - bar_start) // beat) * beat
        found = set(range(first, hi, beat))
        k = bisect.bisect_left(self._starts, lo)
        while k < len(self._starts) and self._starts[k] < hi:
            found.add(self._starts[k])
            k += 1
        return sorted(found)

    def narrow(self, s: TrackState, v: VocabTable, mask: np.ndarray) -> np.ndarray:
        """``mask`` and the chord rule (drums, ``off`` and words outside bars are free).

        Where other rules (the controls: a scale, a range, polyphony, note lengths) leave no word the
        chord rule allows, it yields step by step: first the landing (``land``) and the octave
        (``LEAP``), then altogether for this word; the grammar and the controls always hold.
        """
        if s.phase != IN_BAR or s.is_drum or not self.active:
            return mask
        for land in (True, False):
            m = self._narrowed(s, v, mask, land)
            if m.any() or not mask.any():
                return m
        return mask

    def _narrowed(self, s: TrackState, v: VocabTable, mask: np.ndarray, land: bool) -> np.ndarray:
        bass = self.is_bass(s)
        bar_len = s.bar_len
        bar_start = (s.spec.first_bar + s.bars_done) * bar_len
        now = bar_start + s.t
        beat = beat_steps(s.spec.time_signature, s.grid)
        m = np.append(mask, False)  # a spare slot where the -1 ids of missing words land
        if s.t < bar_len:
            m[v.note_on[~_pitches(self.onsets(now, bass, bar_start, beat))]] = False
            lowest = self._floor.get(now)
            chord = self.chord_at(now)[0]
            if lowest is not None and not chord.is_none and land:  # a note below the others is the bass: the chord's
                m[v.note_on[[p for p in range(lowest) if p % 12 != chord.bass_class]]] = False
            if s.last_pitch is not None and land:
                m[v.note_on[: max(s.last_pitch - LEAP, 0)]] = False
                m[v.note_on[s.last_pitch + LEAP + 1:]] = False
        if s.head and s.carry:
            m[v.note_hold[~_pitches(self.sounding(bar_start, bass)[0])]] = False
        limit = self.time_limit(s, bass, now, bar_start, bar_start + bar_len, beat, land)
        if limit is not None:  # the bar's end moves time to the bar line too
            m[v.time_delta[limit + 1:]] = False
            m[v.ids.get(s.spec.end_word, -1)] = False
        return m[:-1]

    def time_limit(self, s: TrackState, bass: bool, now: int, bar_start: int, bar_end: int, beat: int, land: bool = True) -> int | None:
        """The most steps time may move on: up to the first beat or change where a sounding note is
        no tone of the chord, or (``land``) where a track must land on a tone and does not yet."""
        classes = {p % 12 for p in s.open}
        for b in self.boundaries(now, bar_end, bar_start, beat):
            allowed, must = self.sounding(b, bass)
            if any(not allowed[c] for c in classes) or (land and must is not None and not any(must[c] for c in classes)):
                return b - now
        return None


def _classes(pcs: Iterable[int]) -> np.ndarray:
    out = np.zeros(12, bool)
    out[list(pcs)] = True
    return out


_OCTAVES = np.arange(V.N_PITCHES) % 12


def _pitches(classes: np.ndarray) -> np.ndarray:
    """Per MIDI pitch, whether its class is in ``classes``."""
    return classes[_OCTAVES]


def chord_tone_share(notes: Iterable[tuple[int, int, int]], chords: Sequence[ChordSpan], grid: int,
                     time_signature: tuple[int, int] = (4, 4)) -> tuple[int, int]:
    """``(in chord, all)``: pitched notes ``(pitch, start, end)`` (grid steps) sounding at beat
    starts, counted once per beat they sound on, whose pitch class is a tone of the chord there (``N`` beats left out)."""
    rule = ChordRule(tuple(chords), "strict", grid=grid, time_signature=time_signature)
    beat = beat_steps(time_signature, grid)
    good = total = 0
    for pitch, start, end in notes:
        for b in range(-(-start // beat) * beat, end, beat):
            chord, _ = rule.chord_at(b)
            if not chord.is_none:
                total += 1
                good += pitch % 12 in chord.pitch_classes
    return good, total
