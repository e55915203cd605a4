"""How far two chord readings agree, duration-weighted, as the MIREX chord measures count it.

``compare_chords(reference, estimate)`` samples both span lists on a grid of ``STEPS`` per beat
over the spans the reference labels and counts, in beats:

* ``majmin``: root and major/minor triad class agree (the MIREX "majmin" measure). A reference
  chord is reduced to maj (maj, 7, maj7, 6) or min (min, min7, min6) and ``N`` stays ``N``; other
  reference qualities (dim, aug, sus, dim7, hdim7) are left out. An estimate is reduced the same
  way; its other qualities count as wrong.
* ``root``: the roots agree (``N`` matches only ``N``), every labelled beat.
* ``quality``: root and full quality agree (the bass note is not compared), every labelled beat.
* ``bass``: ``quality`` and the bass note agree too.

``Agreement``\\ s add up (``sum(..., Agreement())``) so a collection is weighted by duration.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from mmmgen.text.chords import Chord, ChordSpan

STEPS = 12  # samples per beat (quarter note)
_MAJ = {"maj", "7", "maj7", "6"}
_MIN = {"min", "min7", "min6"}


def majmin_class(chord: Chord) -> tuple[int, str] | None:
    """``(root, "maj"|"min")``, ``(-1, "N")`` for no chord, ``None`` for other qualities."""
    if chord.is_none:
        return (-1, "N")
    if chord.quality in _MAJ:
        return (chord.root, "maj")
    if chord.quality in _MIN:
        return (chord.root, "min")
    return None


@dataclass(frozen=True)
class Agreement:
    """Beats compared and beats agreeing, per measure (``add`` them; read the shares)."""

    majmin_beats: float = 0.0
    majmin_hits: float = 0.0
    root_beats: float = 0.0
    root_hits: float = 0.0
    quality_hits: float = 0.0
    bass_hits: float = 0.0

    def __add__(self, other: Agreement) -> Agreement:
        return Agreement(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def shares(self) -> dict[str, float | None]:
        """``majmin``, ``root``, ``quality``, ``bass`` as shares (None where nothing was compared)."""
        def share(hits: float, beats: float) -> float | None:
            return round(hits / beats, 4) if beats else None

        return {"majmin": share(self.majmin_hits, self.majmin_beats), "root": share(self.root_hits, self.root_beats),
                "quality": share(self.quality_hits, self.root_beats), "bass": share(self.bass_hits, self.root_beats),
                "beats": round(self.root_beats, 2)}


def _chord_at(spans: list[ChordSpan], steps: int, offset: int) -> list[Chord | None]:
    """The chord of each grid step from ``offset`` (None where no span covers it)."""
    out: list[Chord | None] = [None] * steps
    for span in spans:
        a = max(int(span.start * STEPS) - offset, 0)
        b = min(int(span.end * STEPS) - offset, steps)
        if b > a:
            out[a:b] = [span.chord] * (b - a)
    return out


def compare_chords(reference: list[ChordSpan], estimate: list[ChordSpan]) -> Agreement:
    """How far ``estimate`` agrees with ``reference`` on the beats ``reference`` labels (see the module)."""
    if not reference:
        return Agreement()
    offset = int(min(s.start for s in reference) * STEPS)
    steps = int(max(s.end for s in reference) * STEPS) - offset
    ref, est = _chord_at(reference, steps, offset), _chord_at(estimate, steps, offset)
    counts = dict.fromkeys(("mm_beats", "mm_hits", "root_beats", "root_hits", "quality", "bass"), 0)
    for r, e in zip(ref, est, strict=True):
        if r is None:
            continue
        e = e if e is not None else Chord(None)
        counts["root_beats"] += 1
        counts["root_hits"] += r.root == e.root
        same = r.root == e.root and (r.is_none or r.quality == e.quality)
        counts["quality"] += same
        counts["bass"] += same and r.bass_class == e.bass_class
        r_class = majmin_class(r)
        if r_class is not None:
            counts["mm_beats"] += 1
            counts["mm_hits"] += r_class == majmin_class(e)
    return Agreement(counts["mm_beats"] / STEPS, counts["mm_hits"] / STEPS, counts["root_beats"] / STEPS,
                     counts["root_hits"] / STEPS, counts["quality"] / STEPS, counts["bass"] / STEPS)
