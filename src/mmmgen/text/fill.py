"""Bar-fill text (MMM inpainting): chosen bars become ``FILL_IN`` and their content goes last.

``mask_bars(text, {track: [bars]})`` turns::

    ... TRACK_START INST=0 DENSITY=3 BAR_START a BAR_END BAR_START b BAR_END TRACK_END

into::

    ... TRACK_START INST=0 DENSITY=3 BAR_START a BAR_END BAR_START FILL_IN BAR_END TRACK_END
    FILL_START b FILL_END

so a causal model writes the masked bars after reading everything around them.
``resolve_fills`` puts fill contents back in place; the two are a pure pair
(``resolve_fills(mask_bars(t, m)) == t``). Fills are in text order (track by track, bar by bar).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from mmmgen.text import vocab as V


@dataclass
class TrackWords:
    head: list[str]  # TRACK_START INST=.. DENSITY=..
    bars: list[list[str]] = field(default_factory=list)  # the words inside each bar

    def text(self) -> str:
        words = list(self.head)
        for bar in self.bars:
            words += [V.BAR_START, *bar, V.BAR_END]
        return " ".join([*words, V.TRACK_END])


@dataclass
class PieceWords:
    """A text split into its parts, word for word."""

    header: list[str] = field(default_factory=list)  # PIECE_START TIME_SIGNATURE=.. GENRE=..
    tracks: list[TrackWords] = field(default_factory=list)
    fills: list[list[str]] = field(default_factory=list)  # contents of FILL_START .. FILL_END
    end: list[str] = field(default_factory=list)  # PIECE_END, if any

    def text(self) -> str:
        words = [*self.header, *(t.text() for t in self.tracks), *self.end]
        for fill in self.fills:
            words += [V.FILL_START, *fill, V.FILL_END]
        return " ".join(words)


def split_words(text: str) -> PieceWords:
    """Split MMM text into header, tracks (bars), PIECE_END and fills. Stray words are dropped."""
    piece = PieceWords()
    track: TrackWords | None = None
    bar: list[str] | None = None
    fill: list[str] | None = None
    for word in text.split():
        if fill is not None:
            if word == V.FILL_END:
                piece.fills.append(fill)
                fill = None
            else:
                fill.append(word)
        elif word == V.FILL_START:
            fill = []
        elif bar is not None:
            if word == V.BAR_END:
                track.bars.append(bar)
                bar = None
            else:
                bar.append(word)
        elif track is not None:
            if word == V.BAR_START:
                bar = []
            elif word == V.TRACK_END:
                piece.tracks.append(track)
                track = None
            elif not track.bars:
                track.head.append(word)
        elif word == V.TRACK_START:
            track = TrackWords([word])
        elif word == V.PIECE_END:
            piece.end = [word]
        elif not piece.tracks:
            piece.header.append(word)
    if fill is not None:  # an unfinished fill still counts (generation may stop inside one)
        piece.fills.append(fill)
    return piece


def mask_bars(text: str, masks: dict[int, list[int]], with_fills: bool = True) -> str:
    """Replace bars by ``FILL_IN`` (``masks``: track index -> bar indexes, 0-based).

    With ``with_fills`` the masked bars' contents follow as ``FILL_START .. FILL_END`` (training
    text); without, the text ends where a model starts writing the first fill.
    """
    piece = split_words(text)
    fills = []
    for k, track in enumerate(piece.tracks):
        for b in sorted(set(masks.get(k, ()))):
            if b >= len(track.bars):
                msg = f"track {k + 1} has {len(track.bars)} bars; cannot mask bar {b + 1}"
                raise ValueError(msg)
            fills.append(track.bars[b])
            track.bars[b] = [V.FILL_IN]
    piece.fills = fills if with_fills else []
    return piece.text()


def sounding_at_end(bar: list[str]) -> set[int]:
    """Pitches a bar's words leave sounding at its end (held, or started and not stopped)."""
    sounding: set[int] = set()
    for word in bar:
        w = V.parse_word(word)
        pitch = V.parse_int(w.value, 0, V.N_PITCHES - 1)
        if pitch is None:
            continue
        if w.kind in (V.NOTE_ON, V.NOTE_HOLD):
            sounding.add(pitch)
        elif w.kind == V.NOTE_OFF:
            sounding.discard(pitch)
    return sounding


def masked_bars(text: str) -> list[tuple[int, int]]:
    """``(track, bar)`` of every ``FILL_IN`` placeholder, in text order."""
    return [
        (k, b) for k, t in enumerate(split_words(text).tracks) for b, bar in enumerate(t.bars) if bar == [V.FILL_IN]
    ]


def resolve_fills(text: str) -> str:
    """Put each fill into its placeholder, in order; a placeholder without a fill becomes an empty bar."""
    piece = split_words(text)
    fills = iter(piece.fills)
    for track in piece.tracks:
        track.bars = [next(fills, []) if bar == [V.FILL_IN] else bar for bar in track.bars]
    piece.fills = []
    return piece.text()


def random_fill(text: str, rng: random.Random, max_tracks: int = 2) -> str:
    """A bar-fill training variant: a random span of bars in 1..``max_tracks`` random tracks."""
    piece = split_words(text)
    if not piece.tracks:
        return text
    masks = {}
    for k in rng.sample(range(len(piece.tracks)), rng.randint(1, min(max_tracks, len(piece.tracks)))):
        n = len(piece.tracks[k].bars)
        if n:
            first = rng.randrange(n)
            masks[k] = list(range(first, rng.randint(first, n - 1) + 1))
    return mask_bars(text, masks)
