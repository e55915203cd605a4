"""Chords made audible: a chord progression as a track of block chords (the chord track sounds nothing by default).

``block_chords(spans, tpq)`` voices each chord as its bass note (``C:maj/E``: E) in the octave
from E2 up and its tones in the octave from G3 up, held for the chord's span; ``N`` is silence.
Add it to a score to hear a piece's chords (``with_block_chords``), or to check what a chord
reader makes of a progression played plainly (``benchmarks/bench_chord_gen.py``'s ceiling).
"""

from __future__ import annotations

from collections.abc import Iterable

BASS_LOW = 40  # E2: the bass note lies in [BASS_LOW, BASS_LOW + 12)
TONES_LOW = 55  # G3: the chord tones lie in [TONES_LOW, TONES_LOW + 12)


def voicing(chord) -> list[int]:
    """MIDI pitches of a chord's block voicing, bass first (empty for no chord)."""
    if chord.is_none:
        return []
    bass = BASS_LOW + (chord.bass_class - BASS_LOW) % 12
    return [bass, *sorted(TONES_LOW + (pc - TONES_LOW) % 12 for pc in chord.pitch_classes)]


def block_chords(spans: Iterable, tpq: int, program: int = 0, velocity: int = 64, name: str = "Chords"):
    """A ``symusic.Track`` of block chords for ``ChordSpan`` s (quarter notes), ``tpq`` ticks per quarter."""
    from symusic import Note, Track

    track = Track(name=name, program=program, is_drum=False)
    for span in spans:
        start, end = round(span.start * tpq), round(span.end * tpq)
        for pitch in voicing(span.chord) if end > start else ():
            track.notes.append(Note(start, end - start, pitch, velocity))
    track.notes.sort()
    return track


def with_block_chords(score, spans: Iterable, program: int = 0):
    """A copy of ``score`` with the chords as one more track of block chords."""
    out = score.copy()
    out.tracks.append(block_chords(spans, out.ticks_per_quarter, program))
    return out
