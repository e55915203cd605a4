"""Music is generated here, one instrument (track) at a time, always valid.

A ``Song`` is a value: its meter, genre, bar count, tempo and the MMM text of each track. The
``Generator`` holds the model and tokenizer (loaded once, passed in) and turns a song into a new
song: ``start``, ``add_track``, ``regenerate_last``, ``remove_last``, ``change_tempo``, ``infill``,
``extend``. Songs of any length (up to ``MAX_BARS``) are written window by window (``window.py``). Every
sampled word is masked by the grammar rules of ``grammar.py`` (``engine.py`` draws them), so a new track always parses,
has exactly the song's number of bars and at least one note. The key/value cache of the text
already read is kept between calls, so adding a track reads only the new words.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace

from mmmgen.generate.engine import Engine
from mmmgen.generate.grammar import TrackSpec
from mmmgen.generate.sampling import GenerationError, Sampling
from mmmgen.text import vocab as V
from mmmgen.text.decode import text_to_piece

log = logging.getLogger(__name__)

MAX_BARS = 256  # the longest song (bars): longer prompts and uploads are cut here, with a message


@dataclass(frozen=True)
class Song:
    """A piece being built track by track (a pure value: operations return new songs)."""

    time_signature: tuple[int, int] = (4, 4)
    genre: str = V.OTHER_GENRE
    n_bars: int = 8
    tempo: float = 120.0
    tracks: tuple[str, ...] = ()  # "TRACK_START INST=.. DENSITY=.. BAR_START ... TRACK_END"

    @property
    def header(self) -> str:
        return f"{V.PIECE_START} {V.time_signature(*self.time_signature)} {V.genre(self.genre)}"

    @property
    def text(self) -> str:
        return " ".join([self.header, *self.tracks])

    @property
    def instruments(self) -> list[tuple[int, bool]]:
        """``(program, is_drum)`` of each track, in order."""
        return [(t.program, t.is_drum) for t in text_to_piece(self.text).tracks]

    @classmethod
    def from_text(cls, text: str, tempo: float = 120.0, n_bars: int | None = None) -> Song:
        """A song from MMM text (e.g. a prompt); tracks are kept word for word."""
        piece = text_to_piece(text)
        tracks, current = [], None
        for word in text.split():
            if word == V.TRACK_START:
                current = [word]
            elif current is not None:
                current.append(word)
                if word == V.TRACK_END:
                    tracks.append(" ".join(current))
                    current = None
        bars = n_bars or piece.n_bars or 8
        return cls(piece.time_signature, piece.genre or V.OTHER_GENRE, bars, piece.tempo or tempo, tuple(tracks))


class Generator(Engine):
    """Songs made and changed one track at a time: ``start``, ``add_track``, ``regenerate_last``,
    ``remove_last``, ``change_tempo``, ``infill``, ``extend``. Each returns a new ``Song``."""

    # --- song operations -----------------------------------------------------------------
    def start(self, genre: str | None = None, time_signature=(4, 4), n_bars: int = 8, tempo: float = 120.0, **track) -> Song:
        """A new song with one track; ``genre=None`` lets the model choose it."""
        genre = V.normalize_genre(genre) if genre else _pick_genre(self, track.get("sampling") or Sampling())
        song = Song(tuple(time_signature), genre, n_bars, tempo)
        return self.add_track(song, **track)

    def add_track(
        self,
        song: Song,
        instrument: tuple[int, bool] | None = None,
        density: int | None = None,
        new_instrument: bool = False,
        sampling: Sampling | None = None,
    ) -> Song:
        """The song with one more track.

        Args:
            instrument: force ``INST=`` (``(program, is_drum)``); None lets the model choose.
            density: force the DENSITY level; None lets the model choose.
            new_instrument: when the model chooses, only instruments the song does not have.
            sampling: temperature / top-k / top-p / seed.
        """
        if density is not None and not 0 <= density < self.density_levels:
            msg = f"density must be in 0..{self.density_levels - 1}, got {density}"
            raise GenerationError(msg)
        instruments = None
        if instrument is not None:
            instruments = [instrument]
        elif new_instrument:
            taken = set(song.instruments)
            instruments = [k for k in self.table.inst if k not in taken]
        spec = TrackSpec(song.n_bars, song.time_signature, instruments, density)
        track = self._sample_track(song, spec, sampling or Sampling())
        return replace(song, tracks=(*song.tracks, track))

    def extend(self, song: Song, bars: int, sampling: Sampling | None = None, **track_kwargs) -> Song:
        """The song with ``bars`` more bars on every track; every earlier bar stays word for word.

        Window by window (``window.py``): the model reads the most recent bars of every track (as
        many as its context holds) and writes the new bars track by track under the grammar masks.
        Each track keeps its instrument and density. ``track_kwargs`` are per-track controls; none
        applies to bars that continue a track yet, so any given is an error.
        """
        from mmmgen.generate.window import extend_tracks, split_song

        if track_kwargs:
            msg = f"extend takes no {', '.join(sorted(track_kwargs))}: new bars keep each track's instrument and density"
            raise GenerationError(msg)
        if not song.tracks:
            msg = "the song has no track to extend"
            raise GenerationError(msg)
        if not 1 <= int(bars) <= MAX_BARS - song.n_bars:
            msg = f"bars must be in 1..{MAX_BARS - song.n_bars} (a song has at most {MAX_BARS} bars; this one has {song.n_bars})"
            raise GenerationError(msg)
        header, tracks = split_song(song.text)
        for k, t in enumerate(tracks):
            if len(t.bars) != song.n_bars:
                msg = f"track {k + 1} has {len(t.bars)} bars, the song {song.n_bars}: every track needs the song's bars to be extended"
                raise GenerationError(msg)
        specs = [TrackSpec(song.n_bars + int(bars), song.time_signature) for _ in tracks]
        tracks = extend_tracks(self, header, tracks, int(bars), specs, sampling or Sampling())
        result = replace(song, n_bars=song.n_bars + int(bars), tracks=tuple(t.text() for t in tracks))
        self._check(result)
        return result

    def _check(self, song: Song) -> None:
        """Every track parses strictly, has exactly the song's bars and at least one note (else a bug)."""
        piece = text_to_piece(song.text, self.grid, strict=True)
        assert all(t.n_bars == song.n_bars and t.notes for t in piece.tracks), "constraints failed"

    def regenerate_last(self, song: Song, **track) -> Song:
        """The song with its last track written anew (same instrument unless another is forced)."""
        if not song.tracks:
            msg = "the song has no track to regenerate"
            raise GenerationError(msg)
        last = song.instruments[-1]
        track.setdefault("instrument", last)
        return self.add_track(self.remove_last(song), **track)

    @staticmethod
    def remove_last(song: Song) -> Song:
        if not song.tracks:
            msg = "the song has no track to remove"
            raise GenerationError(msg)
        return replace(song, tracks=song.tracks[:-1])

    @staticmethod
    def change_tempo(song: Song, tempo: float) -> Song:
        """Tempo is a rendering setting: nothing is regenerated."""
        if not 10 <= tempo <= 400:
            msg = f"tempo must be in 10..400 BPM, got {tempo}"
            raise GenerationError(msg)
        return replace(song, tempo=float(tempo))

    def _sample_track(self, song: Song, spec: TrackSpec, sampling: Sampling) -> str:
        from mmmgen.generate.window import split_song, write_track

        header, others = split_song(song.text)
        text = write_track(self, header, others, spec.n_bars, spec, sampling).text()
        piece = text_to_piece(f"PIECE_START {V.time_signature(*spec.time_signature)} {text}", self.grid, strict=True)
        assert piece.tracks[0].n_bars == spec.n_bars and piece.tracks[0].notes, "constraints failed"
        return text

    def infill(self, song: Song, track: int, bars: list[int] | None = None, sampling: Sampling | None = None) -> Song:
        """The song with bars of one track written anew, conditioned on everything else (bar-fill).

        Args:
            track: the track's index in the song (0-based).
            bars: bar indexes (0-based); None regenerates the whole track.

        Every other bar keeps its words. A note that the bar before the span leaves sounding may be
        held into the first new bar (or ends at the bar line); a ``NOTE_HOLD`` in the bar after the
        span continues a note the new bars leave sounding, else it starts the note at the bar line.
        """
        from mmmgen.generate.window import infill_tracks, split_song

        sampling = sampling or Sampling()
        if not 0 <= track < len(song.tracks):
            msg = f"track must be 1..{len(song.tracks)}, got {track + 1}"
            raise GenerationError(msg)
        bars = sorted(set(range(song.n_bars) if bars is None else bars))
        if not bars or bars[0] < 0 or bars[-1] >= song.n_bars:
            msg = f"bars must be within 1..{song.n_bars}"
            raise GenerationError(msg)
        header, tracks = split_song(song.text)
        tracks = infill_tracks(self, header, tracks, track, bars, TrackSpec(1, song.time_signature), sampling)
        result = replace(song, tracks=tuple(t.text() if k == track else old for k, (t, old) in enumerate(zip(tracks, song.tracks, strict=True))))
        assert text_to_piece(result.text, self.grid, strict=True).tracks[track].n_bars == song.n_bars
        return result


def instrument_label(program: int, is_drum: bool) -> str:
    """``'Violin (40)'`` / ``'Drums'`` for lists shown to people."""
    try:
        from mmmgen.render.gm import instrument_name
    except ImportError:  # pragma: no cover - gm arrives with the rendering module
        return "Drums" if is_drum else f"Program {program}"
    return instrument_name(program, is_drum)



# --- prompts and whole pieces (used by the CLI and the app) -------------------------------------
def prompt_song(path, settings: dict, tempo: float = 120.0, max_bars: int = MAX_BARS) -> Song:
    """The song a prompt file starts: every bar of a MIDI file (up to ``max_bars``), or the first line of MMM text.

    A cut (more bars than ``max_bars``, or a meter change: a song keeps one meter) is logged as a warning.
    """
    from pathlib import Path

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
    song = Song.from_text(text, tempo=tempo, n_bars=text_to_piece(text, grid).n_bars or bars)
    if song.n_bars > max_bars:
        msg = f"{path}: {song.n_bars} bars; a song has at most {max_bars}"
        raise GenerationError(msg)
    return song


def score_song(score, settings: dict, tempo: float = 120.0, max_bars: int = MAX_BARS) -> tuple[Song, str | None]:
    """Every bar of a ``symusic.Score`` as a song (notes as the codec quantizes them), and what was cut, if anything.

    The song starts at the score's first stretch of one (spellable) meter with notes and ends
    with it, or after ``max_bars`` bars. Each track's ``DENSITY`` is the level of its notes per
    trained window (``codec.bars``), so later windows keep the density the track has.
    """
    from mmmgen.config import CodecConfig
    from mmmgen.text.encode import meter_segments, parts_to_text, score_to_windows, window_to_parts

    codec = settings.get("codec", {})
    window, grid = codec.get("bars", 8), codec.get("grid", 12)
    first = 0
    for _, n_bars, meter in meter_segments(score, grid):
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
            return Song.from_text(text, tempo=tempo, n_bars=keep), note
        first += n_bars
    msg = "no bars with notes"
    raise GenerationError(msg)


def generate_song(
    generator: Generator,
    tracks: int = 4,
    genre: str | None = None,
    instruments: list[tuple[int, bool]] | None = None,
    density: int | None = None,
    n_bars: int = 8,
    time_signature: tuple[int, int] = (4, 4),
    tempo: float = 120.0,
    sampling: Sampling | None = None,
    prompt: Song | None = None,
) -> Song:
    """A piece of ``tracks`` new tracks (after the prompt's, if any); track i uses ``instruments[i]``.

    Without a prompt, a piece longer than the model's window is written as its first window
    (every track), then extended (``Generator.extend``); a prompt keeps all its bars.
    """
    sampling = sampling or Sampling()
    more = 0 if prompt else max(0, n_bars - generator.window)
    if not prompt and n_bars > MAX_BARS:
        msg = f"a song has at most {MAX_BARS} bars, got {n_bars}"
        raise GenerationError(msg)
    song = prompt or Song(tuple(time_signature), V.normalize_genre(genre) if genre else _pick_genre(generator, sampling), n_bars - more, tempo)
    instruments = list(instruments or [])
    for i in range(tracks):
        seed = None if sampling.seed is None else sampling.seed + i
        inst = instruments[i] if i < len(instruments) else None
        song = generator.add_track(song, instrument=inst, density=density, new_instrument=inst is None, sampling=replace(sampling, seed=seed))
    if more and song.tracks:
        song = generator.extend(song, more, replace(sampling, seed=None if sampling.seed is None else sampling.seed + tracks))
    return song


def _pick_genre(generator: Generator, sampling: Sampling) -> str:
    return random.Random(sampling.seed).choice(generator.genres) if generator.genres else V.OTHER_GENRE
