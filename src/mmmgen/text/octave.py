"""Octave copies of a pitched part's text: the training augmentation ``prepare --octave-copies``.

When ``extend`` writes new bars into a song, a part should stay in the register its shown bars
use, even where that is not its instrument's usual one (a guitar part high up the neck, a bass
doubled an octave up). ``prepare --octave-copies P`` adds, beside a share ``P`` of the windows with
a pitched part, a copy in which one pitched part, drawn at random, sounds an octave higher or lower
in all its bars: the same music with one part in another register, whose first bars name the
register of its last ones. Only the pitches of its words change, so the copy is exactly the
encoding of the moved notes (tested).
"""

from __future__ import annotations

import random

from mmmgen.text import vocab as V
from mmmgen.text.kit import PITCHED, part_pitches


def shift_part(bars: str, semitones: int) -> str:
    """A part's bar texts with every pitch moved by ``semitones`` (the caller keeps them in 0..127)."""
    out = []
    for word in bars.split():
        name, _, value = word.partition("=")
        out.append(f"{name}={int(value) + semitones}" if name in PITCHED else word)
    return " ".join(out)


def octave_copy(parts: list[tuple[str, int, str]], rng: random.Random) -> list[tuple[str, int, str]] | None:
    """``parts`` (``window_to_parts``) with one pitched part, drawn at random, an octave up or down
    (a direction that keeps all its pitches in 0..127, drawn when both do). None when the window has
    no pitched part with notes, or none can move."""
    candidates = []
    for i, (word, n, bars) in enumerate(parts):
        if n and word not in (V.inst(0, is_drum=True), V.chord_track_inst()):
            pitches = part_pitches(bars, PITCHED)  # held notes too
            moves = [s for s in (-12, 12) if pitches and 0 <= min(pitches) + s and max(pitches) + s < V.N_PITCHES]
            if moves:
                candidates.append((i, moves))
    if not candidates:
        return None
    i, moves = rng.choice(candidates)
    word, n, bars = parts[i]
    return [*parts[:i], (word, n, shift_part(bars, rng.choice(moves))), *parts[i + 1:]]
