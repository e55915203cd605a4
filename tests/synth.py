"""Synthetic MIDI for the tests: scores built note by note, so the expected answer is known."""

from __future__ import annotations

import random
from pathlib import Path

from symusic import Note, Score, Tempo, TimeSignature, Track


def make_score(
    tracks: list[tuple[int, bool, list[tuple[int, float, float]]]],
    meters: list[tuple[float, int, int]] = ((0, 4, 4),),
    tpq: int = 480,
) -> Score:
    """A score from ``(program, is_drum, [(pitch, start_quarters, duration_quarters)])`` tracks.

    ``meters`` are ``(time_in_quarters, numerator, denominator)`` time signatures.
    """
    score = Score(tpq)
    score.tempos.append(Tempo(0, qpm=120.0))
    for time, num, den in meters:
        score.time_signatures.append(TimeSignature(round(time * tpq), num, den))
    for program, is_drum, notes in tracks:
        track = Track(program=program, is_drum=is_drum)
        for pitch, start, duration in notes:
            track.notes.append(Note(round(start * tpq), max(1, round(duration * tpq)), pitch, 90))
        track.notes.sort()
        score.tracks.append(track)
    return score


def random_score(seed: int, n_bars: int = 12, meter: tuple[int, int] = (4, 4), tpq: int = 480) -> Score:
    """Random multitrack music on sixteenths and triplets, with drums and ties over bar lines."""
    rng = random.Random(seed)
    bar_q = meter[0] * 4 / meter[1]
    tracks = []
    programs = rng.sample(range(1, 128), 4)  # distinct, so tests can tell tracks apart
    for k in range(rng.randint(1, 4)):
        is_drum = k == 0 and rng.random() < 0.5
        notes = []
        t = rng.choice([0, 0.25, 1 / 3])
        while t < n_bars * bar_q:
            dur = rng.choice([0.25, 0.5, 1, 1.5, 2, 3, 1 / 3, 2 / 3, 4 / 3]) if not is_drum else 0.1
            chord = rng.randint(1, 3)
            for pitch in rng.sample(range(36, 84) if not is_drum else range(35, 60), chord):
                notes.append((pitch, t, dur))
            t += rng.choice([0.25, 0.5, 1, 1 / 3, 2 / 3, 1.5, 2])
        tracks.append((programs[k], is_drum, notes))
    return make_score(tracks, [(0, *meter)], tpq)


def write(score: Score, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    score.dump_midi(str(path))
    return path


def write_type0(path: str | Path, channels: dict[int, tuple[int, list[int]]], tpq: int = 96) -> Path:
    """A type-0 file (one MIDI track) with several channels: ``{channel: (program, pitches)}``.

    Each channel plays its pitches as consecutive quarter notes.
    """
    import mido

    mid = mido.MidiFile(type=0, ticks_per_beat=tpq)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    events = []
    for ch, (program, pitches) in channels.items():
        events.append((0, 0, mido.Message("program_change", channel=ch, program=program)))
        for i, p in enumerate(pitches):
            events.append((i * tpq, 2, mido.Message("note_on", channel=ch, note=p, velocity=80)))
            events.append(((i + 1) * tpq, 1, mido.Message("note_off", channel=ch, note=p, velocity=0)))
    now = 0
    for t, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=t - now))
        now = t
    mid.save(str(path))
    return Path(path)
