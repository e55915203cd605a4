"""Drum-kit subsets of a drum part's text: the training augmentation ``prepare --kit-subsets``.

A drum part of a window may use a few kit pieces or many. When ``extend`` or ``infill`` writes new
bars into a song, the model should keep to the kit the part's shown bars use. Real windows seldom
teach that in so many words (the kit of a band's drummer is mostly the same everywhere), so
``prepare --kit-subsets P`` adds, beside a share ``P`` of the windows with a drum part of 3 or more
pitches, a copy in which each drum part keeps a seeded random subset of its pitches in all its
bars: the same music with a smaller kit, whose first bars name the kit of its last ones.

``keep_pitches`` works on the bar texts of ``text.encode.track_to_bar_texts`` and gives exactly
what encoding the kept notes gives (tested): the words of dropped pitches go, the time between the
remaining events is summed and spelled again, and a bar's trailing time is not written.
"""

from __future__ import annotations

import random

from mmmgen.text import vocab as V

PITCHED = (V.NOTE_ON, V.NOTE_OFF, V.NOTE_HOLD)  # the words that carry a pitch


def part_pitches(bars: str, kinds: tuple[str, ...] = (V.NOTE_ON,)) -> set[int]:
    """The pitches of a part's bar texts in words of ``kinds`` (default: the ``NOTE_ON`` s it plays)."""
    found = set()
    for word in bars.split():
        name, _, value = word.partition("=")
        if name in kinds:
            found.add(int(value))
    return found


def keep_pitches(bars: str, keep: set[int], grid: int) -> tuple[str, int]:
    """A part's bar texts with only the notes of ``keep``, and how many notes remain."""
    from mmmgen.text.encode import _time_delta_words

    out: list[str] = []
    pending = 0  # grid steps since the last word kept
    notes = 0
    for word in bars.split():
        name, _, value = word.partition("=")
        if name == V.TIME_DELTA:
            pending += V.parse_time_delta(value, grid)
        elif name in PITCHED:
            if int(value) in keep:
                if pending:
                    out += _time_delta_words(pending, grid)
                    pending = 0
                out.append(word)
                notes += name == V.NOTE_ON
        elif word == V.BAR_START:
            out.append(word)
            pending = 0
        else:  # BAR_END: time after the bar's last event is never written
            out.append(word)
    return " ".join(out), notes


def kit_subset(parts: list[tuple[str, int, str]], rng: random.Random, grid: int) -> list[tuple[str, int, str]] | None:
    """``parts`` (``window_to_parts``) with each drum part of 3 or more pitches on a random kit:
    each pitch kept with probability 1/2, at least one kept and one dropped. None when no drum part
    has 3 pitches (the window gets no copy)."""
    drums = V.inst(0, is_drum=True)
    out, changed = [], False
    for word, n, bars in parts:
        pitches = sorted(part_pitches(bars)) if word == drums else []
        if len(pitches) < 3:
            out.append((word, n, bars))
            continue
        keep = {p for p in pitches if rng.random() < 0.5}
        if not keep or len(keep) == len(pitches):
            keep = set(rng.sample(pitches, rng.randint(1, len(pitches) - 1)))
        kept, n_kept = keep_pitches(bars, keep, grid)
        out.append((word, n_kept, kept))
        changed = True
    return out if changed else None
