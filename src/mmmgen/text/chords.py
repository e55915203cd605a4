"""Chords as values: the finite chord vocabulary, its one spelling, and the spellings musicians write.

A ``Chord`` is a root pitch class, a quality from ``QUALITIES`` and an optional bass pitch class
(when it is not the root), or ``NO_CHORD``. Its ``label`` is the one spelling the project writes
(CSV files, the chord track of the MMM text): ``ROOT:QUALITY[/BASS]`` as in the Harte/MIREX
notation with note names for the bass, e.g. ``A:min``, ``G:7``, ``C:maj/E``, ``N``.

``parse_chord`` reads that spelling and the ones musicians write (``Am``, ``F#m7``, ``Cmaj7``,
``G7``, ``Bb``, ``Edim``, ``Fsus4``, ``C/E``, ``Bm7b5``, ``Eø``, ``A-7``, ``N.C.``);
``parse_progression`` reads a progression (``"Am F C G"``: one chord per bar; ``"Am:2 F:2"``:
durations in beats; ``"Am F | C G"``: bars split evenly among their chords). A beat is a quarter
note everywhere in mmmgen (CSV ``start_beat``/``end_beat`` too), whatever the meter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from mmmgen.errors import MMMGenError

# semitones above the root; the order is the vocabulary's order
QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "sus2": (0, 2, 7),
    "sus4": (0, 5, 7),
    "dim7": (0, 3, 6, 9),
    "hdim7": (0, 3, 6, 10),
    "6": (0, 4, 7, 9),
    "min6": (0, 3, 7, 9),
}
NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
NO_CHORD_LABEL = "N"
_LETTER = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTAL = {"": 0, "#": 1, "♯": 1, "b": -1, "♭": -1, "##": 2, "bb": -2}
# what musicians write after the root -> quality (matched whole, case-sensitive: "M7" is maj7, "m7" is min7)
_SUFFIX = {
    "": "maj", "maj": "maj", "M": "maj", "major": "maj",
    "m": "min", "min": "min", "-": "min", "minor": "min",
    "7": "7", "dom7": "7", "dom": "7",
    "maj7": "maj7", "M7": "maj7", "Δ": "maj7", "Δ7": "maj7", "^7": "maj7", "ma7": "maj7",
    "m7": "min7", "min7": "min7", "-7": "min7", "mi7": "min7",
    "dim": "dim", "°": "dim", "o": "dim",
    "aug": "aug", "+": "aug", "#5": "aug",
    "sus2": "sus2", "sus4": "sus4", "sus": "sus4",
    "dim7": "dim7", "°7": "dim7", "o7": "dim7",
    "hdim7": "hdim7", "hdim": "hdim7", "m7b5": "hdim7", "min7b5": "hdim7", "-7b5": "hdim7", "ø": "hdim7", "ø7": "hdim7",
    "6": "6", "maj6": "6", "M6": "6",
    "min6": "min6", "m6": "min6", "-6": "min6",
}
_NO_CHORD = {"n", "nc", "n.c.", "n.c", "none"}
_ROOT = re.compile(r"^([A-Ga-g])(##|bb|#|b|♯|♭)?")


class ChordError(MMMGenError):
    """A chord or progression that cannot be read (the message says which word and why)."""


@dataclass(frozen=True)
class Chord:
    """A root pitch class (0 = C) and quality, with the bass pitch class when it is not the root."""

    root: int | None  # None: no chord
    quality: str = "maj"
    bass: int | None = None  # None: the root is the bass

    def __post_init__(self) -> None:
        if self.root is not None and self.quality not in QUALITIES:
            msg = f"unknown chord quality {self.quality!r}: use one of {', '.join(QUALITIES)}"
            raise ChordError(msg)
        if self.bass is not None and (self.root is None or self.bass % 12 == self.root % 12):
            object.__setattr__(self, "bass", None)
        if self.root is not None:
            object.__setattr__(self, "root", self.root % 12)
        if self.bass is not None:
            object.__setattr__(self, "bass", self.bass % 12)

    @property
    def is_none(self) -> bool:
        return self.root is None

    @property
    def pitch_classes(self) -> frozenset[int]:
        """The chord's tones (with its bass); empty for no chord."""
        if self.root is None:
            return frozenset()
        tones = {(self.root + step) % 12 for step in QUALITIES[self.quality]}
        return frozenset(tones if self.bass is None else {*tones, self.bass})

    @property
    def third(self) -> int | None:
        """The chord's second tone (its third; the suspended tone of a sus chord); None for no chord."""
        return None if self.root is None else (self.root + QUALITIES[self.quality][1]) % 12

    @property
    def bass_class(self) -> int | None:
        """The lowest note's pitch class: the bass when given, else the root (None for no chord)."""
        return self.root if self.bass is None else self.bass

    @property
    def label(self) -> str:
        """``ROOT:QUALITY[/BASS]`` (``A:min``, ``C:maj/E``) or ``N``."""
        if self.root is None:
            return NO_CHORD_LABEL
        text = f"{NOTE_NAMES[self.root]}:{self.quality}"
        return text if self.bass is None else f"{text}/{NOTE_NAMES[self.bass]}"

    def __str__(self) -> str:
        return self.label


NO_CHORD = Chord(None)


def note_class(text: str) -> int:
    """``"F#"`` -> 6, ``"Bb"`` -> 10 (a note name with an optional accidental)."""
    match = _ROOT.match(text)
    if match is None or match.end() != len(text):
        msg = f"bad note name {text!r}: use A-G with an optional # or b"
        raise ChordError(msg)
    return (_LETTER[match.group(1).upper()] + _ACCIDENTAL[match.group(2) or ""]) % 12


@lru_cache(maxsize=1024)
def parse_chord(text: str) -> Chord:
    """A chord in the project's spelling (``A:min``, ``C:maj/E``, ``N``) or a musician's (``Am``, ``F#m7``, ``C/E``)."""
    word = text.strip()
    if word.lower() in _NO_CHORD:
        return NO_CHORD
    match = _ROOT.match(word)
    if match is None:
        msg = f"bad chord {text!r}: it must start with a root note A-G (or be N for no chord)"
        raise ChordError(msg)
    root = note_class(match.group(0)[0].upper() + (match.group(2) or ""))
    rest = word[match.end():]
    rest, slash, bass_text = rest.partition("/")
    bass = note_class(bass_text.strip()) if slash else None
    suffix = rest[1:] if rest.startswith(":") else rest
    quality = suffix if suffix in QUALITIES else _SUFFIX.get(suffix)
    if quality is None:
        msg = f"bad chord {text!r}: unknown quality {suffix!r} (known: {', '.join(QUALITIES)}, and Am, Cmaj7, G7, Bm7b5, Fsus4, ...)"
        raise ChordError(msg)
    return Chord(root, quality, bass)


@dataclass(frozen=True)
class ChordSpan:
    """A chord from ``start`` to ``end``, in beats (quarter notes) from the start of the piece."""

    start: Fraction
    end: Fraction
    chord: Chord

    @property
    def duration(self) -> Fraction:
        return self.end - self.start


def _split_duration(word: str) -> tuple[str, Fraction | None]:
    """``"Am:2"`` -> (``"Am"``, 2); ``"A:min"`` -> (``"A:min"``, None); ``"A:min:1.5"`` -> (``"A:min"``, 3/2).

    ``"G:7"`` and ``"C:6"`` are the chords G7 and C6 (the project's own spelling wins); write
    ``"G7:2"`` or ``"G:maj:7"`` for a duration after a bare root that looks like a quality.
    """
    head, sep, tail = word.rpartition(":")
    if not sep or not re.fullmatch(r"\d+(\.\d+)?|\d+/\d+", tail):
        return word, None
    if tail in QUALITIES and _ROOT.fullmatch(head):
        return word, None
    beats = Fraction(tail)
    if beats <= 0:
        msg = f"bad chord duration in {word!r}: beats must be positive"
        raise ChordError(msg)
    return head, beats


def parse_progression(text: str, bar_beats: Fraction | float = 4) -> list[ChordSpan]:
    """Read a progression: ``"Am F C G"`` (a chord per bar), ``"Am:2 F:2"`` (beats), ``"Am F | C G"`` (bars).

    ``bar_beats`` is the bar's length in quarter notes (4 in 4/4, 3 in 3/4 and 6/8). Without ``|``
    a chord with no duration lasts a bar; with ``|`` the chords of a bar without a duration share
    what the others leave of it equally. Adjacent spans are never merged: a repeated chord is
    re-struck.
    """
    bar = Fraction(bar_beats).limit_denominator(1000)
    if not text.strip():
        msg = "empty chord progression"
        raise ChordError(msg)
    groups = [g.split() for g in text.split("|")] if "|" in text else [[w] for w in text.split()]
    spans: list[ChordSpan] = []
    time = Fraction(0)
    for words in groups:
        if not words:
            continue  # "| |" or a trailing bar line
        items = [_split_duration(w) for w in words]
        given = sum((d for _, d in items if d is not None), Fraction(0))
        open_count = sum(d is None for _, d in items)
        share = (bar - given) / open_count if open_count else Fraction(0)
        if open_count and share <= 0:
            msg = f"bar {' '.join(words)!r}: the given durations leave no time for the other chords"
            raise ChordError(msg)
        for word, beats in items:
            length = share if beats is None else beats
            spans.append(ChordSpan(time, time + length, parse_chord(word)))
            time += length
    return spans


def chord_vocabulary(with_bass: bool = False) -> list[Chord]:
    """Every chord the vocabulary knows, no chord first (with every bass note when ``with_bass``)."""
    basses = [None, *range(12)] if with_bass else [None]
    chords = [NO_CHORD]
    for root in range(12):
        for quality in QUALITIES:
            chords += [Chord(root, quality, b) for b in basses if b != root]
    return chords
