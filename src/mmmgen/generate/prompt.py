"""Songs from the user's files and back: every bar of a MIDI file (``score_song``) or a line of MMM text
(``prompt_song``), and the score of a song (``song_to_score``), which writes again what the file said
beyond its text (tempo map, track names, drum kits: ``text/meta.py``)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from mmmgen.generate.sampling import GenerationError
from mmmgen.generate.song import MAX_BARS, Song
from mmmgen.text import vocab as V
from mmmgen.text.decode import text_to_piece, text_to_score
from mmmgen.text.meta import apply_meta, score_meta

log = logging.getLogger(__name__)


def prompt_song(path, settings: dict, tempo: float | None = None, max_bars: int = MAX_BARS) -> Song:
    """The song a prompt file starts: every bar of a MIDI file (up to ``max_bars``), or the first line of MMM text.

    ``tempo`` (BPM) replaces the file's; unset, a MIDI file keeps its tempo map (``Song.meta``)
    and text plays at its ``BPM=`` or 120. A MIDI file's track names and drum kits are kept too.
    A cut (more bars than ``max_bars``, or a meter change: a song keeps one meter) is logged as a warning.
    """

    path = Path(path)
    codec = settings.get("codec", {})
    bars, grid = codec.get("bars", 8), codec.get("grid", 12)
    if not path.is_file():
        msg = f"prompt not found: {path}"
        raise GenerationError(msg)
    if path.suffix.lower() in (".mid", ".midi"):
        from mmmgen.data.prepare import load_score

        song, note = score_song(load_score(path), settings, tempo, max_bars)
        if note:
            log.warning("%s: %s", path, note)
        return song
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        msg = f"{path}: empty prompt"
        raise GenerationError(msg)
    text = lines[0]
    song = Song.from_text(text, tempo=tempo or 120.0, n_bars=text_to_piece(text, grid).n_bars or bars)
    if tempo:
        song = replace(song, tempo=float(tempo))  # over the text's BPM=
    if song.n_bars > max_bars:
        msg = f"{path}: {song.n_bars} bars; a song has at most {max_bars}"
        raise GenerationError(msg)
    return song


def score_song(score, settings: dict, tempo: float | None = None, max_bars: int = MAX_BARS) -> tuple[Song, str | None]:
    """Every bar of a ``symusic.Score`` as a song (notes as the codec quantizes them), and what was cut, if anything.

    The song starts at the score's first stretch of one (spellable) meter with notes and ends
    with it, or after ``max_bars`` bars; a file's chord markers (as mmmgen writes them) become its chords.
    Each track's ``DENSITY`` is the level of its notes per trained window (``codec.bars``), so later
    windows keep the density the track has. The song's ``meta`` keeps the stretch's tempo map (unless
    ``tempo`` replaces it), track names and programs.
    """
    from mmmgen.config import CodecConfig
    from mmmgen.text.encode import meter_segments, parts_to_text, score_to_windows, window_to_parts

    codec = settings.get("codec", {})
    window, grid = codec.get("bars", 8), codec.get("grid", 12)
    first = 0
    for start, n_bars, meter in meter_segments(score, grid):
        if V.parse_time_signature(f"{meter[0]}_{meter[1]}") is None:
            first += n_bars
            continue
        keep = min(n_bars, max_bars)
        windows = [w for w in score_to_windows(score, CodecConfig(grid=grid, bars=keep)) if w.start_bar == first]
        if windows:
            w = windows[0]
            parts = [(word, round(count * window / keep), bars) for word, count, bars in window_to_parts(w, grid)]
            text = parts_to_text(w.time_signature, V.OTHER_GENRE, parts, settings.get("density_edges"))
            note = None
            if keep < n_bars:
                note = f"{n_bars} bars; kept the first {keep} (a song has at most {max_bars})"
            elif first + n_bars < sum(n for _, n, _ in meter_segments(score, grid)):
                note = f"the meter changes after bar {first + n_bars}; kept bars {first + 1}-{first + n_bars} (a song has one meter)"
            ticks = score.tpq / grid
            meta = score_meta(score, [t.source for t in w.tracks], round(start * ticks), round((start + keep * w.bar_steps) * ticks))
            if tempo:
                meta = meta.without_tempos()
            song = Song.from_text(text, tempo=float(tempo or meta.tempo or 120.0), n_bars=keep, meta=meta)
            return (with_markers(song, score) if first == 0 else song), note
        first += n_bars
    msg = "no bars with notes"
    raise GenerationError(msg)


def song_to_score(song: Song, grid: int = 12):
    """The ``symusic.Score`` of a song: its text decoded at its tempo, with what ``song.meta`` keeps of the
    MIDI file it came from (tempo map scaled to ``song.tempo``, track names, drum kits)."""
    return apply_meta(text_to_score(song.text, grid, tempo=song.tempo), song.meta, song.tempo)


def with_markers(song: Song, score) -> Song:
    """The song with the score's own chord symbols (its chord markers, as mmmgen writes them), if it has some."""
    from dataclasses import replace

    from mmmgen.text.chord_track import marker_chords

    chords = marker_chords(score)
    return replace(song, chords=tuple(chords)) if chords else song
