"""Chords of files: MIDI, MusicXML (and the other scores music21 reads) and MMM text, read as scores,
and the chord symbols a score carries itself (MusicXML ``<harmony>``, ABC ``"Am"``).

``load_music(path)`` gives a ``symusic.Score`` and the file's own chord symbols as ``ChordSpan``\\ s
(empty for MIDI and text), both on the same beats: a pickup is padded to a full bar and repeats
are expanded (as the corpus export does), so the symbols line up with the notes that
``read_chords`` reads. ``chord_symbols(stream)`` does the symbol part for a parsed music21 score;
``chord_of_symbol`` maps one music21 ``ChordSymbol`` onto the vocabulary of ``text/chords.py``.
``chords_report(path)`` is what ``mmmgen chords`` prints and writes.

music21 is imported inside the functions that need it (it takes seconds to import).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

from mmmgen.data.prepare import MIDI_SUFFIXES, MidiLoadError, load_score
from mmmgen.text.chords import NO_CHORD, Chord, ChordError, ChordSpan, parse_chord
from mmmgen.text.harmony import (
    chord_scores,
    chords_to_csv,
    format_chord_bars,
    read_chords,
    vocabulary_chords,
)

log = logging.getLogger(__name__)

SCORE_SUFFIXES = {".mxl", ".xml", ".musicxml", ".abc", ".krn", ".mei"}
TEXT_SUFFIXES = {".txt", ".mmm"}
# music21 chordKind -> the vocabulary's quality (extensions reduce to their seventh chord)
_KINDS = {
    "major": "maj", "minor": "min", "augmented": "aug", "diminished": "dim",
    "dominant-seventh": "7", "dominant-ninth": "7", "dominant-11th": "7", "dominant-13th": "7",
    "major-seventh": "maj7", "major-ninth": "maj7", "major-11th": "maj7", "major-13th": "maj7",
    "minor-seventh": "min7", "minor-ninth": "min7", "minor-11th": "min7", "minor-13th": "min7",
    "diminished-seventh": "dim7", "half-diminished-seventh": "hdim7", "half-diminished-ninth": "hdim7",
    "major-sixth": "6", "minor-sixth": "min6", "suspended-second": "sus2", "suspended-fourth": "sus4",
    "suspended-fourth-seventh": "sus4", "minor-major-seventh": "min", "augmented-seventh": "aug",
    "augmented-major-seventh": "aug", "seventh-flat-five": "7", "power": "maj", "pedal": "maj",
}


def chord_of_symbol(symbol) -> Chord | None:
    """A music21 ``ChordSymbol`` (or ``NoChord``) as a ``Chord``; unknown kinds match their pitches.
    None for a symbol music21 could not spell out (no pitches): ``chord_symbols`` leaves its span unlabelled."""
    from music21 import harmony

    if isinstance(symbol, harmony.NoChord):
        return NO_CHORD
    if not symbol.pitches:
        try:
            return parse_chord(symbol.figure)
        except ChordError:
            return None
    root = symbol.root().pitchClass
    bass = symbol.bass().pitchClass if symbol.bass() is not None else None
    quality = _KINDS.get(symbol.chordKind)
    if quality is None:  # Neapolitan, augmented sixths, ...: the vocabulary chord that fits its notes best
        import numpy as np

        chroma = np.zeros((1, 12))
        chroma[0, [p.pitchClass for p in symbol.pitches]] = 1.0
        bass_row = np.zeros((1, 12))
        bass_row[0, bass if bass is not None else root] = 1.0
        return vocabulary_chords()[int(np.argmax(chord_scores(chroma, bass_row)[0]))]
    return Chord(root, quality, bass)


def chord_symbols(stream, shift: float = 0.0) -> list[ChordSpan]:
    """The chord symbols of a parsed music21 score as spans in beats, each lasting to the next (the last to the
    end of the music), shifted by ``shift`` beats (a pickup's padding). Empty when it has none."""
    from music21 import harmony

    flat = stream.flatten()
    symbols = sorted(flat.getElementsByClass(harmony.Harmony), key=lambda s: s.offset)
    end = Fraction(flat.highestTime).limit_denominator(960) + Fraction(shift).limit_denominator(960)
    starts = [Fraction(s.offset).limit_denominator(960) + Fraction(shift).limit_denominator(960) for s in symbols]
    spans: list[ChordSpan] = []
    for i, symbol in enumerate(symbols):
        stop = starts[i + 1] if i + 1 < len(symbols) else max(end, starts[i] + 1)
        chord = chord_of_symbol(symbol)
        if stop > starts[i] and chord is not None:
            spans.append(ChordSpan(starts[i], stop, chord))
    return spans


def _pickup_padding(stream) -> float:
    """Quarters of rest that put the first full bar on a bar line (0 without a pickup)."""
    from music21 import meter
    from music21 import stream as m21stream

    part = stream.parts.first() if hasattr(stream, "parts") and stream.parts else stream
    first = part.getElementsByClass(m21stream.Measure).first()
    if first is None:
        return 0.0
    ts = first.timeSignature or first.getContextByClass(meter.TimeSignature)
    bar = float(ts.barDuration.quarterLength) if ts is not None else 4.0
    filled = float(first.duration.quarterLength)
    return bar - filled if 0 < filled < bar else 0.0


def music21_to_score(stream):
    """A parsed music21 score as ``(symusic.Score, chord symbol spans)``: repeats expanded, pickup padded."""
    from music21 import harmony, meter, tempo
    from music21 import stream as m21stream

    if isinstance(stream, m21stream.Opus):
        stream = stream.scores.first()
    try:
        stream = stream.expandRepeats()
    except Exception as exc:  # music21 raises ExpanderException and others on odd repeat marks
        log.debug("repeats left unexpanded: %s", exc)
    shift = _pickup_padding(stream)
    parts = list(stream.parts) if hasattr(stream, "parts") and stream.parts else [stream]
    tracks = []
    for part in parts:
        notes = []
        for element in part.stripTies().flatten().notes:
            if isinstance(element, harmony.Harmony):
                continue
            for p in getattr(element, "pitches", ()):  # unpitched percussion has none
                notes.append((float(element.offset) + shift, float(element.duration.quarterLength), p.midi))
        instrument = part.getInstrument(returnDefault=True)
        tracks.append((instrument.midiProgram or 0, notes))
    flat = stream.flatten()
    meters = [(float(ts.offset) + (shift if ts.offset > 0 else 0), ts.numerator, ts.denominator)
              for ts in flat.getElementsByClass(meter.TimeSignature)]
    marks = [(float(m.offset), m.getQuarterBPM()) for m in flat.getElementsByClass(tempo.MetronomeMark)]
    return _symusic_score(tracks, meters, marks), chord_symbols(stream, shift)


def _symusic_score(tracks, meters, marks, tpq: int = 480):
    from symusic import Note, Score, Tempo, TimeSignature, Track

    score = Score(tpq)
    for program, notes in tracks:
        if not notes:
            continue
        track = Track(program=max(0, min(int(program), 127)))
        for start, length, pitch in notes:
            if length > 0:
                track.notes.append(Note(round(start * tpq), max(round(length * tpq), 1), int(pitch), 80))
        score.tracks.append(track)
    for at, num, den in meters:
        score.time_signatures.append(TimeSignature(round(at * tpq), num, den))
    for at, bpm in marks[:1] or [(0.0, 120.0)]:
        score.tempos.append(Tempo(round(at * tpq), qpm=float(bpm or 120.0)))
    return score


def load_music(path: str | Path):
    """A MIDI file, a score music21 reads (MusicXML, ABC, ...) or MMM text (the first piece) as
    ``(symusic.Score, the file's own chord symbols)``; raises ``MidiLoadError`` for what cannot be read."""
    path = Path(path)
    if not path.is_file():
        msg = f"no such file: {path}"
        raise FileNotFoundError(msg)
    suffix = path.suffix.lower()
    if suffix in MIDI_SUFFIXES:
        return load_score(path), []
    if suffix in TEXT_SUFFIXES:
        from mmmgen.text.decode import text_to_score

        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not lines:
            raise MidiLoadError("no notes", f"{path}: empty text")
        return text_to_score(lines[0]), []
    if suffix not in SCORE_SUFFIXES:
        msg = f"{path}: unknown file type {suffix!r} (MIDI {sorted(MIDI_SUFFIXES)}, scores {sorted(SCORE_SUFFIXES)}, MMM text {sorted(TEXT_SUFFIXES)})"
        raise MidiLoadError("unknown file type", msg)
    import warnings

    from music21 import converter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            stream = converter.parse(str(path))
        except Exception as exc:  # music21 raises many kinds on bad scores
            raise MidiLoadError("unreadable score", f"{path}: {exc}") from exc
    return music21_to_score(stream)


def chords_report(path: str | Path, symbols: bool = False, resolution: str = "auto") -> tuple[str, str]:
    """``mmmgen chords``: the bar-by-bar text and the CSV of a file's chords (read from its notes, or
    its own chord symbols with ``symbols``)."""
    score, own = load_music(path)
    if symbols and not own:
        msg = f"{path}: the file has no chord symbols of its own (drop --symbols to read them from the notes)"
        raise ChordError(msg)
    spans = own if symbols else read_chords(score, resolution=resolution)
    return format_chord_bars(spans, score), chords_to_csv(spans, score)
