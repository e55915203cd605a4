"""Chord reading on real files (../shared): every midi-dev file reads, and annotated tunes agree with their symbols."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import pytest

from mmmgen.data.prepare import MidiLoadError, find_midi_files, load_score
from mmmgen.text.chord_eval import Agreement, compare_chords
from mmmgen.text.harmony import read_chords, vocabulary_chords

SHARED = Path(__file__).resolve().parents[2] / "shared"
pytestmark = [pytest.mark.shared, pytest.mark.skipif(not (SHARED / "midi-dev").is_dir(), reason="../shared not present")]
MIDI_DEV = find_midi_files(SHARED / "midi-dev") if (SHARED / "midi-dev").is_dir() else []


@pytest.mark.parametrize("path", MIDI_DEV, ids=lambda p: p.name)
def test_every_real_file_reads(path):
    try:
        score = load_score(path)  # as prepare loads: corrupt and note-less files are rejected first
    except MidiLoadError:
        assert path.parent.name == "corrupted" or path.name == "empty.mid"
        return
    spans = read_chords(score)
    assert spans and spans[0].start == 0
    assert all(a.end == b.start and a.chord != b.chord for a, b in itertools.pairwise(spans))
    known = {c.label.split("/")[0] for c in vocabulary_chords()}
    assert {s.chord.label.split("/")[0] for s in spans} <= known
    assert sum(not s.chord.is_none for s in spans) > 0


def nottingham_truth(book: str, number: int, midi_score):
    """The ABC tune's chord symbols (repeats expanded), moved onto the MIDI's beats by its first melody note."""
    from music21 import converter, harmony

    from mmmgen.data.chordfiles import chord_symbols

    tune = converter.parse(SHARED / "corpora" / "nottingham" / "abc" / f"{book}.abc", number=number).expandRepeats()
    first_abc = min(float(n.offset) for n in tune.flatten().notes if not isinstance(n, harmony.Harmony))
    melody = next(t for t in midi_score.tracks if t.name == "melody")
    shift = Fraction(int(melody.notes.numpy()["time"].min()), midi_score.tpq) - Fraction(first_abc).limit_denominator(96)
    return chord_symbols(tune, float(shift))


@pytest.mark.skipif(not (SHARED / "corpora" / "nottingham").is_dir(), reason="no Nottingham corpus")
def test_nottingham_tunes_agree_with_their_abc_symbols():
    total = Agreement()
    for book, number in (("ashover", 2), ("jigs", 5), ("reelsa-c", 7), ("waltzes", 3)):
        score = load_score(SHARED / "corpora" / "nottingham" / "midi" / f"{book}{number}.mid")
        total = total + compare_chords(nottingham_truth(book, number, score), read_chords(score))
    assert total.shares()["majmin"] >= 0.8 and total.root_beats > 100


@pytest.mark.skipif(not (SHARED / "corpora" / "openewld").is_dir(), reason="no OpenEWLD corpus")
def test_openewld_lead_sheets_with_their_chords_as_notes():
    from symusic import Note, Track

    from mmmgen.data.chordfiles import load_music

    total = Agreement()
    for path in sorted((SHARED / "corpora" / "openewld").rglob("*.mxl"))[::100]:
        score, symbols = load_music(path)
        assert symbols, path
        track = Track(program=0)
        for span in symbols:  # the symbols as block chords under the melody
            at, length = round(span.start * score.tpq), round(span.duration * score.tpq)
            pitches = [36 + span.chord.bass_class, *(48 + pc for pc in span.chord.pitch_classes)] if not span.chord.is_none else []
            track.notes.extend(Note(at, length, p, 70) for p in pitches)
        score.tracks.append(track)
        total = total + compare_chords(symbols, read_chords(score))
    assert total.shares()["majmin"] >= 0.8 and total.shares()["quality"] >= 0.6
