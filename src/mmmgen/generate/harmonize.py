"""Harmonise a melody: ``harmonize(generator, melody, tracks)`` adds accompaniment that follows its chords.

The chords come from ``progression.py`` (given, the song's own, written by a model that knows
chords, or read from the melody); the tracks are ``song.generate_song`` over them, under the chord
rule of ``harmony.py``. ``mmmgen harmonize MELODY.mid --tracks 3`` is this function.
"""

from __future__ import annotations

from mmmgen.errors import MMMGenError
from mmmgen.generate.progression import knows_chords, load_chords, sampled_chords, song_chords
from mmmgen.generate.sampling import Sampling
from mmmgen.generate.song import generate_song


def harmonize(generator, melody, tracks: int = 3, chords=None, chord_rule: str = "loose", **options):
    """The melody (a ``Song``) with ``tracks`` accompaniment tracks that follow its chords.

    The chords are ``chords`` when given (anything ``load_chords`` reads), else the song's own (its
    chord track), else, with a model that knows chords, the chord track it writes under the melody
    (``sampled_chords``), else those read from its notes (``text.harmony.read_chords``); the song
    keeps them (its text starts with the chord track). ``options`` go to ``song.generate_song``
    (instruments, density, sampling, takes, controls).
    """
    if chords is not None:
        spans = load_chords(chords, melody.time_signature)
    elif not melody.chords and knows_chords(generator):  # the model writes the chords under the melody
        sampling = options.get("sampling") or Sampling()
        seed = None if sampling.seed is None else sampling.seed - 1
        spans = generator._drive(sampled_chords(generator, melody, seed), sampling).chords
    else:
        spans = song_chords(melody, generator.grid)
    if not spans:
        msg = "the melody has no pitched notes to read chords from; give --chords"
        raise MMMGenError(msg)
    return generate_song(generator, tracks, prompt=melody, chords=spans, chord_rule=chord_rule, **options)
