"""The chord track of the MMM text: chord spans become bar words here, and bar words chord spans.

A piece prepared with ``--chords`` (or generated over a progression) starts with one more track::

    TRACK_START INST=CHORDS DENSITY=0
      BAR_START CHORD=A:min TIME_DELTA=8 CHORD=F:maj BAR_END
      BAR_START CHORD=F:maj BAR_END ...
    TRACK_END

Each bar opens with the chord sounding at its start (``CHORD=N``: none), as a note track's bar
opens with its ``NOTE_HOLD`` s, so any bar can be read or replaced alone; a ``TIME_DELTA`` then a
``CHORD`` names each change inside the bar. The track has no notes: it renders to nothing audible
(``decode.piece_to_score`` writes the chords as MIDI markers). Times are grid steps in the text
and quarter notes (``ChordSpan``) outside it.

The pair is pure: ``chord_bar_texts(spans, ...)`` and ``spans_from_changes(changes, ...)`` (the
decoder collects the changes word by word); ``canonical_spans`` says what comes back: spans on
the grid, cut to the piece, gaps filled with ``N``, equal neighbours merged, chords spelled as the
vocabulary spells them (``vocab.chord_in_vocabulary``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction

from mmmgen.text import vocab as V
from mmmgen.text.chords import NO_CHORD, Chord, ChordSpan


def to_steps(beats: Fraction | float, grid: int) -> int:
    """Quarter notes -> grid steps (rounded to the nearest step)."""
    return round(Fraction(beats).limit_denominator(10_000) * grid)


def transpose_chord(chord: Chord, semitones: int) -> Chord:
    """The chord ``semitones`` higher (no chord stays none)."""
    if chord.root is None:
        return chord
    bass = None if chord.bass is None else chord.bass + semitones
    return Chord(chord.root + semitones, chord.quality, bass)


def canonical_spans(spans: Iterable[ChordSpan], n_steps: int, grid: int, offset: int = 0, transpose: int = 0) -> list[ChordSpan]:
    """The spans as the chord track holds them over steps ``[offset, offset + n_steps)`` of the
    piece, in quarter notes from ``offset``: on the grid, gaps filled with ``N``, equal neighbours
    merged, chords in the vocabulary's spelling (transposed by ``transpose`` semitones)."""
    cuts: list[tuple[int, int, Chord]] = []
    for span in sorted(spans, key=lambda s: s.start):
        a = max(to_steps(span.start, grid) - offset, 0)
        b = min(to_steps(span.end, grid) - offset, n_steps)
        if b > a:
            if cuts and a < cuts[-1][1]:  # overlapping spans: the later one wins from its start
                cuts[-1] = (cuts[-1][0], a, cuts[-1][2])
            cuts.append((a, b, V.chord_in_vocabulary(transpose_chord(span.chord, transpose))))
    out: list[tuple[int, int, Chord]] = []
    time = 0
    for a, b, chord in [*cuts, (n_steps, n_steps, NO_CHORD)]:
        for piece in ((time, a, NO_CHORD), (a, b, chord)):
            lo, hi, c = piece
            if hi <= lo:
                continue
            if out and out[-1][2] == c and out[-1][1] == lo:
                out[-1] = (out[-1][0], hi, c)
            else:
                out.append((lo, hi, c))
        time = max(time, b)
    return [ChordSpan(Fraction(a, grid), Fraction(b, grid), c) for a, b, c in out]


def chord_bar_texts(
    spans: Iterable[ChordSpan], n_bars: int, bar_len: int, grid: int, offset: int = 0, transpose: int = 0,
) -> list[str]:
    """The words of each bar of the chord track (``BAR_START ... BAR_END``) for ``n_bars`` bars of
    ``bar_len`` steps starting ``offset`` steps into the piece (``spans`` in quarter notes from the
    piece start)."""
    canon = canonical_spans(spans, n_bars * bar_len, grid, offset, transpose)
    starts = [(to_steps(s.start, grid), s.chord) for s in canon]
    bars = []
    k = 0
    for b in range(n_bars):
        line, end = b * bar_len, (b + 1) * bar_len
        while k + 1 < len(starts) and starts[k + 1][0] <= line:
            k += 1
        words = [V.BAR_START, V.chord(starts[k][1])]
        t, j = line, k + 1
        while j < len(starts) and starts[j][0] < end:
            words += [*_deltas(starts[j][0] - t, grid), V.chord(starts[j][1])]
            t = starts[j][0]
            j += 1
        words.append(V.BAR_END)
        bars.append(" ".join(words))
    return bars


def chord_track_text(spans: Iterable[ChordSpan], n_bars: int, bar_len: int, grid: int, offset: int = 0, transpose: int = 0) -> str:
    """The whole chord track: ``TRACK_START INST=CHORDS DENSITY=0 <bars> TRACK_END``."""
    bars = chord_bar_texts(spans, n_bars, bar_len, grid, offset, transpose)
    return " ".join([V.TRACK_START, V.chord_track_inst(), V.density(0), *bars, V.TRACK_END])


def _deltas(steps: int, grid: int) -> list[str]:
    longest = V.max_time_delta_steps(grid)
    words = [V.time_delta(longest, grid)] * (steps // longest)
    if steps % longest:
        words.append(V.time_delta(steps % longest, grid))
    return words


def spans_from_changes(changes: Sequence[tuple[int, Chord]], n_steps: int, grid: int) -> list[ChordSpan]:
    """Chord spans (quarter notes) of a chord track's changes ``(step, chord)`` (steps from the
    piece start, in order) over ``n_steps`` steps: each chord lasts to the next change; before
    the first, no chord; equal neighbours merged."""
    ends = [a for a, _ in changes[1:]] + [n_steps] if changes else []
    spans = [ChordSpan(Fraction(a, grid), Fraction(b, grid), c) for (a, c), b in zip(changes, ends, strict=True) if b > a]
    return canonical_spans(spans, n_steps, grid)


def chord_at(spans: Sequence[ChordSpan], beat: Fraction | float) -> Chord:
    """The chord sounding at ``beat`` (no chord outside the spans)."""
    for span in spans:
        if span.start <= beat < span.end:
            return span.chord
    return NO_CHORD


def bar_labels(spans: Sequence[ChordSpan], n_bars: int, bar_beats: Fraction | float) -> list[list[str]]:
    """Per bar, the labels of the chords sounding in it, in order (for a readable line per bar)."""
    bar = Fraction(bar_beats).limit_denominator(1000)
    out = []
    for b in range(n_bars):
        lo, hi = b * bar, (b + 1) * bar
        out.append([s.chord.label for s in spans if s.start < hi and s.end > lo])
    return out


def marker_chords(score) -> list[ChordSpan]:
    """A score's own chord symbols: its markers when there are some and every one reads as a chord
    (``decode.piece_to_score`` writes a piece's chords so), each lasting to the next or the score's
    end; else an empty list."""
    from mmmgen.text.chords import ChordError, parse_chord

    markers = sorted(score.markers, key=lambda m: m.time)
    if not markers:
        return []
    try:
        chords = [parse_chord(m.text) for m in markers]
    except ChordError:
        return []
    tpq = score.ticks_per_quarter
    end = max(score.end(), max((n.end for t in score.tracks for n in t.notes), default=0), markers[-1].time + 1)
    times = [Fraction(m.time, tpq) for m in markers] + [Fraction(end, tpq)]
    return [ChordSpan(a, b, c) for a, b, c in zip(times, times[1:], chords, strict=False) if b > a]
