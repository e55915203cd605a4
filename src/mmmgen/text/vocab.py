"""The MMM vocabulary: every word of the text, its builders and its parser.

This is the only module that spells token strings. The codec, the tokenizer, the constrained
decoder and the app build and read words through the functions here.

The grammar (see ``docs/tokens.md``)::

    PIECE_START [TIME_SIGNATURE=n_d] [GENRE=X]
      [TRACK_START INST=CHORDS DENSITY=0 (BAR_START CHORD=c (TIME_DELTA=t CHORD=c)* BAR_END)* TRACK_END]
      TRACK_START INST=p|INST=DRUMS DENSITY=d
        BAR_START [NOTE_HOLD=p ...] (NOTE_OFF=p | NOTE_ON=p | TIME_DELTA=t)* BAR_END   (x bars)
      TRACK_END  (x tracks)
    [PIECE_END]

``TIME_DELTA=t`` counts sixteenth notes, as in the tutorial. Values that are not whole sixteenths
are spelled as reduced fractions (``TIME_DELTA=4/3`` is a triplet eighth), so every duration has
exactly one spelling. ``python -m mmmgen.text.vocab`` prints the full vocabulary.

The chord track (data prepared with ``--chords``) comes first: each bar opens with the chord
sounding at its start and names every change after it (``text/chord_track.py``); it has no notes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from mmmgen.text.chords import QUALITIES, Chord, ChordError, chord_vocabulary, parse_chord

# --- structure words --------------------------------------------------------------------------
PIECE_START = "PIECE_START"
PIECE_END = "PIECE_END"
TRACK_START = "TRACK_START"
TRACK_END = "TRACK_END"
BAR_START = "BAR_START"
BAR_END = "BAR_END"
FILL_IN = "FILL_IN"  # bar-fill placeholder (MMM inpainting)
FILL_START = "FILL_START"
FILL_END = "FILL_END"
STRUCTURE_WORDS = (
    PIECE_START,
    PIECE_END,
    TRACK_START,
    TRACK_END,
    BAR_START,
    BAR_END,
    FILL_IN,
    FILL_START,
    FILL_END,
)

# --- valued words -----------------------------------------------------------------------------
NOTE_ON = "NOTE_ON"
NOTE_OFF = "NOTE_OFF"
NOTE_HOLD = "NOTE_HOLD"  # pitch still sounding from the previous bar (a tie over the bar line)
TIME_DELTA = "TIME_DELTA"
INST = "INST"
DENSITY = "DENSITY"
GENRE = "GENRE"
TIME_SIGNATURE = "TIME_SIGNATURE"
VELOCITY = "VELOCITY"  # optional velocity mode
CHORD = "CHORD"  # a chord of the chord track (``CHORD=A:min``), sounding from here to the next one or the bar end
BPM = "BPM"  # read from the tutorial's text; never written
DRUMS = "DRUMS"
CHORDS = "CHORDS"  # INST=CHORDS: the chord track (chords, no notes)
OTHER_GENRE = "OTHER"

# Special tokens of the tokenizer, as in the tutorial.
UNK, CLS, SEP, PAD, MASK = "[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"
SPECIAL_TOKENS = (UNK, CLS, SEP, PAD, MASK)

N_PITCHES = 128
N_PROGRAMS = 128
TS_NUMERATORS = range(1, 17)
TS_DENOMINATORS = (1, 2, 4, 8, 16)


# --- builders ---------------------------------------------------------------------------------
def note_on(pitch: int) -> str:
    return f"{NOTE_ON}={pitch}"


def note_off(pitch: int) -> str:
    return f"{NOTE_OFF}={pitch}"


def note_hold(pitch: int) -> str:
    return f"{NOTE_HOLD}={pitch}"


def inst(program: int, is_drum: bool = False) -> str:
    return f"{INST}={DRUMS}" if is_drum else f"{INST}={program}"


def chord_track_inst() -> str:
    """``INST=CHORDS``: the head of the chord track."""
    return f"{INST}={CHORDS}"


def chord(chord_or_label) -> str:
    """``CHORD=A:min`` for a ``text.chords.Chord`` (its label; see ``chord_in_vocabulary``) or a label."""
    return f"{CHORD}={getattr(chord_or_label, 'label', chord_or_label)}"


def chord_in_vocabulary(value):
    """The chord the text can spell: a bass kept only when it is a tone of the chord (an inversion).

    Why: with every bass note the chord words would be 12 x 13 x 12 (1,873), most of them never
    seen in data; without any bass the text could not say ``C:maj/E`` (a first inversion, common
    and audible). Inversions are 12 x 33 more words: 553 chord words in all. A bass that is not a
    chord tone (``C:maj/D``) is written in root position.
    """
    if value.root is None or value.bass is None:
        return value
    if (value.bass - value.root) % 12 in QUALITIES[value.quality]:
        return value
    return Chord(value.root, value.quality)


def chord_words() -> list[str]:
    """Every ``CHORD=`` word (no chord ``N`` first, then roots C..B, qualities in order, inversions)."""
    seen: dict[str, None] = {}
    for c in chord_vocabulary(with_bass=True):
        seen.setdefault(chord(chord_in_vocabulary(c)))
    return list(seen)


def density(level: int) -> str:
    return f"{DENSITY}={level}"


def genre(label: str) -> str:
    return f"{GENRE}={label}"


def time_signature(numerator: int, denominator: int) -> str:
    return f"{TIME_SIGNATURE}={numerator}_{denominator}"


def velocity(level: int) -> str:
    return f"{VELOCITY}={level}"


def time_delta(steps: int, grid: int) -> str:
    """``TIME_DELTA`` word for ``steps`` grid steps (``grid`` steps per quarter note)."""
    value = Fraction(steps * 4, grid)  # in sixteenth notes
    text = str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    return f"{TIME_DELTA}={text}"


_LABEL_BAD = re.compile(r"[^A-Z0-9]+")


def normalize_genre(label: str | None) -> str:
    """A token-safe genre label: one upper-case word (``'Hip Hop'`` -> ``'HIP_HOP'``).

    Empty or missing labels become ``OTHER``.
    """
    if label is None:
        return OTHER_GENRE
    text = _LABEL_BAD.sub("_", str(label).strip().upper()).strip("_")
    return text or OTHER_GENRE


# --- parser -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Word:
    """A parsed word: its kind (``NOTE_ON``, ``BAR_START``, ...) and its value, if any."""

    kind: str
    value: str | None = None


def parse_word(word: str) -> Word:
    """Split ``KIND=value`` (or a bare structure word). Unknown words keep their text as kind."""
    kind, sep, value = word.partition("=")
    return Word(kind, value if sep else None)


def parse_time_delta(value: str, grid: int) -> int | None:
    """Grid steps for a ``TIME_DELTA`` value in sixteenths: ``4``, ``4/3`` or the tutorial's ``4.0``.

    Returns None when the value is not a number. Values are rounded to the nearest grid step.
    """
    steps = time_delta_exact(value, grid)
    return None if steps is None else round(steps)


@lru_cache(maxsize=4096)
def time_delta_exact(value: str, grid: int) -> int | Fraction | None:
    """Exact (unrounded) grid steps of a ``TIME_DELTA`` value, an ``int`` when whole; None when it
    is not a finite number."""
    try:
        sixteenths = Fraction(value) if "/" in value else Fraction(float(value))
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    steps = sixteenths * grid / 4
    return steps.numerator if steps.denominator == 1 else steps


def parse_int(value: str | None, low: int, high: int) -> int | None:
    """``int(value)`` if it lies in ``[low, high]`` (accepts ``'4.0'``), else None."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not number.is_integer() or not low <= number <= high:
        return None
    return int(number)


def parse_time_signature(value: str | None) -> tuple[int, int] | None:
    """``'6_8'`` (or ``'6/8'``) -> ``(6, 8)``; None when not a supported meter."""
    if value is None:
        return None
    parts = re.split(r"[_/]", value)
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    num, den = int(parts[0]), int(parts[1])
    if num not in TS_NUMERATORS or den not in TS_DENOMINATORS:
        return None
    return num, den


def parse_chord_value(value: str | None):
    """A ``CHORD`` value -> ``text.chords.Chord`` in the text's spelling; None when it is not one."""
    if value is None:
        return None
    try:
        parsed = parse_chord(value)
    except ChordError:
        return None
    return parsed if parsed.label == value and chord_in_vocabulary(parsed) == parsed else None


def parse_inst(value: str | None) -> tuple[int, bool] | None:
    """``INST`` value -> ``(program, is_drum)``; None when invalid (``CHORDS`` is not an instrument)."""
    if value == DRUMS:
        return 0, True
    program = parse_int(value, 0, N_PROGRAMS - 1)
    return None if program is None else (program, False)


def bar_steps(time_signature: tuple[int, int], grid: int) -> int:
    """Grid steps in one bar of ``numerator/denominator`` at ``grid`` steps per quarter."""
    numerator, denominator = time_signature
    return numerator * grid * 4 // denominator


def beat_steps(time_signature: tuple[int, int], grid: int) -> int:
    """Grid steps per beat of the meter: its denominator's note, a dotted one in compound meters (6/8, 9/8, 12/8)."""
    num, den = time_signature
    unit = grid * 4 // den
    return 3 * unit if den >= 8 and num % 3 == 0 and num > 3 else unit


# --- the full vocabulary ----------------------------------------------------------------------
def max_time_delta_steps(grid: int) -> int:
    """The longest single ``TIME_DELTA``: a whole 4/4 bar (16 sixteenths); longer gaps repeat it."""
    return 4 * grid


def all_words(
    grid: int = 12,
    density_levels: int = 10,
    genres: list[str] | tuple[str, ...] = (),
    velocity_levels: int = 0,
    chords: bool = False,
) -> list[str]:
    """Every word of the grammar for these settings, in a stable order (no special tokens).

    Covers pitches, durations, instruments, densities and meters the data may never use, so a
    model can write them. ``chords``: the chord track's words too (``INST=CHORDS`` and every
    ``CHORD=``), for data prepared with ``--chords``; without, the vocabulary is as it always was.
    """
    words = list(STRUCTURE_WORDS)
    words += [time_signature(n, d) for n in TS_NUMERATORS for d in TS_DENOMINATORS]
    labels = sorted({normalize_genre(g) for g in genres} | {OTHER_GENRE})
    words += [genre(g) for g in labels]
    words += [inst(p) for p in range(N_PROGRAMS)] + [inst(0, is_drum=True)]
    words += [density(level) for level in range(density_levels)]
    words += [note_hold(p) for p in range(N_PITCHES)]
    words += [note_on(p) for p in range(N_PITCHES)]
    words += [note_off(p) for p in range(N_PITCHES)]
    words += [time_delta(s, grid) for s in range(1, max_time_delta_steps(grid) + 1)]
    words += [velocity(v) for v in range(velocity_levels)]
    if chords:
        words += [chord_track_inst(), *chord_words()]
    return words


if __name__ == "__main__":  # pragma: no cover - a printout for people
    vocabulary = all_words()
    print(f"{len(vocabulary)} words (+{len(SPECIAL_TOKENS)} special tokens) at grid 12:")
    print(" ".join(vocabulary))
