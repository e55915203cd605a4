"""The chords a song follows: read from what the user gives (``chords=``), kept with the song, shown to the model.

``load_chords`` reads a progression string (``"Am F C G"``, ``"Am:2 F:2"``, ``"Am F | C G"``), a
chord CSV (``mmmgen chords --out``), a MIDI / MusicXML / MMM text file (its chords read by
``text.harmony.read_chords``; a text file's own chord track when it has one) or ``ChordSpan`` s.
``with_chords`` puts them on a song (``Song.chords``, quarter notes from the song's start),
repeated to the song's length (``harmony.fit_progression``: a progression shorter than the song
loops); ``rule_for`` makes the chord rule a track obeys. ``song_chords`` gives a song's chords
when it has none: read from its notes, so ``extend`` and ``infill`` keep a song's harmony;
``extended_chords`` carries them on over new bars (the song's progression, looped);
``harmonize.py`` accompanies a melody over them.

A model knows chords when its vocabulary holds ``INST=CHORDS`` (trained on data prepared with
``--chords``): it then reads the chord track first (``chord_track_words``) and may write one itself
(``grammar.chord_track_allowed``, the grammar of the chord track); any other model never sees it.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from mmmgen.generate.harmony import ChordRule, fit_progression
from mmmgen.text import vocab as V
from mmmgen.text.chord_track import chord_track_text
from mmmgen.text.chords import ChordError, ChordSpan, parse_progression
from mmmgen.text.vocab import bar_steps, beat_steps

SCORE_SUFFIXES = (".mid", ".midi", ".musicxml", ".xml", ".mxl")


def bar_beats(time_signature: tuple[int, int]) -> Fraction:
    """Quarter notes per bar."""
    return Fraction(4 * time_signature[0], time_signature[1])


def load_chords(value, time_signature: tuple[int, int] = (4, 4)) -> list[ChordSpan]:
    """Chord spans (quarter notes) from a progression string, a CSV / MIDI / MusicXML / MMM text file, or spans.

    Raises ``ChordError`` naming what cannot be read (a bad chord, a missing file, a file without chords).
    """
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, Path) or (isinstance(value, str) and Path(value).suffix.lower() in (*SCORE_SUFFIXES, ".csv", ".txt")):
        return _file_chords(Path(value))
    spans = parse_progression(str(value), bar_beats(time_signature))
    return spans


def _file_chords(path: Path) -> list[ChordSpan]:
    from mmmgen.text.harmony import chords_from_csv, read_chords

    if not path.is_file():
        msg = f"chord file not found: {path}"
        raise ChordError(msg)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        spans = chords_from_csv(path.read_text(encoding="utf-8"))
    elif suffix == ".txt":
        from mmmgen.text.decode import text_to_piece, text_to_score

        line = next((x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()), "")
        spans = text_to_piece(line).chords or read_chords(text_to_score(line))
    else:
        spans = read_chords(_load_score(path))
    if not any(not s.chord.is_none for s in spans):
        msg = f"{path}: no chords found"
        raise ChordError(msg)
    return spans


def _load_score(path: Path):
    """A MIDI file, or a MusicXML file through music21 (written to MIDI, then read as any MIDI file)."""
    from mmmgen.data.prepare import load_score

    if path.suffix.lower() in (".mid", ".midi"):
        return load_score(path)
    import tempfile

    import music21

    with tempfile.TemporaryDirectory() as tmp:
        midi = Path(tmp) / "score.mid"
        music21.converter.parse(str(path)).write("midi", fp=str(midi))
        return load_score(midi)


def with_chords(song, chords, grid: int = 12):
    """The song with ``chords`` (anything ``load_chords`` reads) over all its bars, looped when shorter."""
    spans = load_chords(chords, song.time_signature)
    return replace(song, chords=tuple(fit_progression(spans, song.n_bars * bar_beats(song.time_signature))))


def song_chords(song, grid: int = 12, leave_out: int | None = None) -> tuple[ChordSpan, ...]:
    """The song's chords: its own, else those read from its notes (track ``leave_out`` left out when others have notes)."""
    if song.chords:
        return song.chords
    from mmmgen.text.decode import piece_to_score, text_to_piece
    from mmmgen.text.harmony import read_chords

    piece = text_to_piece(song.text, grid)
    if leave_out is not None and len(piece.tracks) > 1:
        piece.tracks = [t for k, t in enumerate(piece.tracks) if k != leave_out]
    if not any(t.notes for t in piece.tracks if not t.is_drum):
        return ()
    return tuple(read_chords(piece_to_score(piece, grid)))


def extended_chords(song, n_new: int, chords=None, grid: int = 12) -> tuple[ChordSpan, ...]:
    """Chords of the song with ``n_new`` more bars: its own for its bars, then ``chords`` (when given)
    or its own progression again (looped from its first bar) for the new ones."""
    beats = bar_beats(song.time_signature)
    old = song_chords(song, grid)
    start, end = song.n_bars * beats, (song.n_bars + n_new) * beats
    if chords is None and old and old[-1].end >= end:  # planned for the longer song already
        return tuple(replace(s, end=min(s.end, end)) for s in old if s.start < end)
    source = load_chords(chords, song.time_signature) if chords is not None else list(old)
    new = fit_progression(source, n_new * beats)
    kept = [s for s in old if s.start < start]
    kept = [replace(s, end=min(s.end, start)) for s in kept]
    return tuple([*kept, *(ChordSpan(s.start + start, s.end + start, s.chord) for s in new)])


def rule_for(song, chord_rule: str = "loose", scale: str | None = None, grid: int = 12, bass: bool | None = None,
             leave_out: int | None = None) -> ChordRule | None:
    """The chord rule over the song's chords (None when it has none or the rule is off)."""
    if not song.chords or chord_rule == "off":
        ChordRule((), chord_rule)  # a bad rule name fails all the same
        return None
    covered = covered_tones(song, grid, leave_out)
    rule = ChordRule(tuple(song.chords), chord_rule, scale, bass, grid=grid, time_signature=tuple(song.time_signature),
                     covered=tuple((c, pcs) for c, pcs, _ in covered), floor=tuple((c, low) for c, _, low in covered if low is not None))
    return rule if rule.active else None


def covered_tones(song, grid: int = 12, leave_out: int | None = None) -> tuple[tuple[int, frozenset[int]], ...]:
    """Per chord change and beat (grid step): the pitch classes the song's pitched tracks (but ``leave_out``) sound
    there and the lowest pitch (None: silence); empty when it has no such track."""
    from mmmgen.text.decode import text_to_piece

    if not song.tracks:
        return ()
    tracks = [t for k, t in enumerate(text_to_piece(song.text, grid).tracks) if k != leave_out and not t.is_drum]
    if not tracks:
        return ()
    beat = beat_steps(song.time_signature, grid)
    bar = bar_steps(song.time_signature, grid)
    beats = range(0, song.n_bars * bar, beat) if bar % beat == 0 else (b * bar + k for b in range(song.n_bars) for k in range(0, bar, beat))
    changes = sorted({round(s.start * grid) for s in song.chords} | set(beats))
    out = []
    for c in changes:
        sounding = [n[0] for t in tracks for n in t.notes if n[1] <= c < n[2]]
        out.append((c, frozenset(p % 12 for p in sounding), min(sounding, default=None)))
    return tuple(out)


def lowest_track(song, grid: int = 12) -> int | None:
    """The index of the pitched track with the lowest mean pitch (a bass line), when the song has two or more."""
    from mmmgen.text.decode import text_to_piece

    tracks = text_to_piece(song.text, grid).tracks
    means = [(np.mean([n[0] for n in t.notes]), k) for k, t in enumerate(tracks) if t.notes and not t.is_drum]
    return min(means)[1] if len(means) > 1 else None


# --- a model that knows chords ------------------------------------------------------------------
def knows_chords(engine) -> bool:
    """Whether the model's vocabulary has the chord track (it was trained with ``--chords``)."""
    return V.chord_track_inst() in engine.table.ids


def chord_track_words(song, n_bars: int | None = None, grid: int = 12):
    """The song's chord track as ``TrackWords`` (for a model that knows chords to read first)."""
    from mmmgen.text.fill import split_words

    bars = n_bars or song.n_bars
    text = chord_track_text(song.chords, bars, bar_steps(song.time_signature, grid), grid)
    return split_words(text).tracks[0]


def song_with_chords(engine, song, chords, chord_rule: str, total_bars: int, seed: int | None, controls=None):
    """Program: the song over ``chords`` planned for ``total_bars`` bars (its first window may be
    shorter: ``extended_chords`` carries them on); without chords, a model that knows chords writes
    the chord track (``chord_track_allowed``; with a scale among ``controls``, chords of the scale:
    ``controls.chord_scale_rule``), any other model leaves the song as it is."""
    if chords is not None:
        return replace(song, chords=with_chords(replace(song, n_bars=total_bars), chords, engine.grid).chords)
    if song.chords or chord_rule == "off" or not knows_chords(engine):
        return song
    from mmmgen.generate.grammar import TrackSpec
    from mmmgen.generate.window import split_song, write_track
    from mmmgen.text.decode import text_to_piece

    header, _ = split_song(song.text)
    spec = TrackSpec(song.n_bars, song.time_signature, chord_track=True, controls=controls)
    target = yield from write_track(engine, header, [], song.n_bars, spec, seed)
    piece = text_to_piece(f"{V.PIECE_START} {V.time_signature(*song.time_signature)} {target.text()}", engine.grid)
    return replace(song, chords=tuple(piece.chords))


def chord_line(song) -> str:
    """The song's chords, bar by bar, for people: ``A:min | F:maj G:maj | ...``."""
    from mmmgen.text.chord_track import bar_labels

    return " | ".join(" ".join(bar) for bar in bar_labels(song.chords, song.n_bars, bar_beats(song.time_signature)))


def sampled_chords(engine, song, seed: int | None):
    """Program: the song with chords a model that knows chords writes for it: every bar of its chord
    track is a bar-fill (``FILL_IN``) written after reading all of its tracks (``window.infill_tracks``)."""
    from mmmgen.generate.grammar import TrackSpec
    from mmmgen.generate.window import infill_tracks, split_song
    from mmmgen.text.decode import text_to_piece

    header, tracks = split_song(song.text)
    blank = chord_track_words(replace(song, chords=()), grid=engine.grid)
    spec = TrackSpec(1, song.time_signature, chord_track=True)
    written = yield from infill_tracks(engine, header, [blank, *tracks], 0, list(range(song.n_bars)), spec, seed)
    piece = text_to_piece(f"{V.PIECE_START} {V.time_signature(*song.time_signature)} {written[0].text()}", engine.grid)
    return replace(song, chords=tuple(piece.chords))
