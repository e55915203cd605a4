"""Music is generated here, one instrument (track) at a time, always valid.

A ``Song`` is a value: its meter, genre, bar count, tempo and the MMM text of each track. The
``Generator`` holds the model and tokenizer (loaded once, passed in) and turns a song into a new
song: ``start``, ``add_track``, ``regenerate_last``, ``remove_last``, ``change_tempo``. Every
sampled word is masked by the grammar rules of ``grammar.py`` (``engine.py`` draws them), so a new track always parses,
has exactly the song's number of bars and at least one note. The key/value cache of the text
already read is kept between calls, so adding a track reads only the new words.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from mmmgen.generate.controls import Controls, fill_context
from mmmgen.generate.engine import Engine
from mmmgen.generate.grammar import TrackSpec, TrackState
from mmmgen.generate.sampling import GenerationError, Sampling
from mmmgen.text import vocab as V
from mmmgen.text.decode import text_to_piece


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
    ``remove_last``, ``change_tempo``, ``infill``. Each returns a new ``Song``."""

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
        controls: Controls | None = None,
    ) -> Song:
        """The song with one more track.

        Args:
            instrument: force ``INST=`` (``(program, is_drum)``); None lets the model choose.
            density: force the DENSITY level; None lets the model choose.
            new_instrument: when the model chooses, only instruments the song does not have.
            sampling: temperature / top-k / top-p / seed.
            controls: musical controls the new track obeys (scale, range, polyphony, note lengths).
        """
        controls = _checked(controls, song.time_signature, self.grid)
        if density is not None and not 0 <= density < self.density_levels:
            msg = f"density must be in 0..{self.density_levels - 1}, got {density}"
            raise GenerationError(msg)
        instruments = None
        if instrument is not None:
            instruments = [instrument]
        elif new_instrument:
            taken = set(song.instruments)
            instruments = [k for k in self.table.inst if k not in taken]
        spec = TrackSpec(song.n_bars, song.time_signature, instruments, density, controls=controls)
        track = self._sample_track(song.text, spec, sampling or Sampling())
        return replace(song, tracks=(*song.tracks, track))

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

    def _sample_track(self, song_text: str, spec: TrackSpec, sampling: Sampling) -> str:
        state = TrackState(spec, self.grid)
        words = self._sample_words(f"{song_text} {V.TRACK_START}", state, sampling)
        text = " ".join([V.TRACK_START, *words])
        piece = text_to_piece(f"PIECE_START {V.time_signature(*spec.time_signature)} {text}", self.grid, strict=True)
        assert piece.tracks[0].n_bars == spec.n_bars and piece.tracks[0].notes, "constraints failed"
        return text

    def infill(
        self, song: Song, track: int, bars: list[int] | None = None, sampling: Sampling | None = None, controls: Controls | None = None
    ) -> Song:
        """The song with bars of one track written anew, conditioned on everything else (bar-fill).

        Args:
            track: the track's index in the song (0-based).
            bars: bar indexes (0-based); None regenerates the whole track.
            controls: musical controls the new bars obey (their notes; a note held into them keeps its pitch).

        Every other bar keeps its words. A note that the bar before the span leaves sounding may be
        held into the first new bar (or ends at the bar line); a ``NOTE_HOLD`` in the bar after the
        span continues a note the new bars leave sounding, else it starts the note at the bar line.
        """
        from mmmgen.text.fill import mask_bars, sounding_at_end, split_words

        sampling = sampling or Sampling()
        if not 0 <= track < len(song.tracks):
            msg = f"track must be 1..{len(song.tracks)}, got {track + 1}"
            raise GenerationError(msg)
        bars = sorted(set(range(song.n_bars) if bars is None else bars))
        if not bars or bars[0] < 0 or bars[-1] >= song.n_bars:
            msg = f"bars must be within 1..{song.n_bars}"
            raise GenerationError(msg)
        piece = split_words(song.text)
        context = mask_bars(song.text, {track: bars}, with_fills=False)
        controls = _checked(controls, song.time_signature, self.grid)
        spec = TrackSpec(1, song.time_signature, controls=controls)
        written: dict[int, list[str]] = {}
        for i, b in enumerate(bars):
            before = written.get(b - 1, piece.tracks[track].bars[b - 1] if b > 0 else [])
            carried, around = sounding_at_end(before), {}
            if controls is not None:
                now = [written.get(k, bar) for k, bar in enumerate(piece.tracks[track].bars)]
                around = fill_context(piece.tracks[track].head, now, b, carried, bars, song.time_signature, self.grid)
            state = TrackState.for_fill(spec, carried, self.grid, **around)
            seed = None if sampling.seed is None else sampling.seed + i
            context += f" {V.FILL_START}"
            words = self._sample_words(context, state, replace(sampling, seed=seed))
            context += " " + " ".join(words)
            written[b] = words[:-1]  # without FILL_END
        target = piece.tracks[track]
        target.bars = [written.get(b, bar) for b, bar in enumerate(target.bars)]
        tracks = tuple(target.text() if k == track else t for k, t in enumerate(song.tracks))
        result = replace(song, tracks=tracks)
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
def prompt_song(path, settings: dict, tempo: float = 120.0) -> Song:
    """The song a prompt file starts: the first window of a MIDI file, or the first line of MMM text."""
    from pathlib import Path

    from mmmgen.config import CodecConfig
    from mmmgen.data.prepare import load_score
    from mmmgen.text.encode import score_to_windows, window_to_text

    path = Path(path)
    codec = settings.get("codec", {})
    bars, grid = codec.get("bars", 8), codec.get("grid", 12)
    if not path.is_file():
        msg = f"prompt not found: {path}"
        raise GenerationError(msg)
    if path.suffix.lower() in (".mid", ".midi"):
        windows = score_to_windows(load_score(path), CodecConfig(grid=grid, bars=bars))
        if not windows:
            msg = f"{path}: no bars with notes"
            raise GenerationError(msg)
        text = window_to_text(windows[0], V.OTHER_GENRE, settings.get("density_edges"), grid)
    else:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not lines:
            msg = f"{path}: empty prompt"
            raise GenerationError(msg)
        text = lines[0]
    return Song.from_text(text, tempo=tempo, n_bars=text_to_piece(text, grid).n_bars or bars)


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
    controls: Controls | None = None,
) -> Song:
    """A piece of ``tracks`` new tracks (after the prompt's, if any); track i uses ``instruments[i]``."""
    sampling = sampling or Sampling()
    song = prompt or Song(tuple(time_signature), V.normalize_genre(genre) if genre else _pick_genre(generator, sampling), n_bars, tempo)
    instruments = list(instruments or [])
    for i in range(tracks):
        seed = None if sampling.seed is None else sampling.seed + i
        inst = instruments[i] if i < len(instruments) else None
        song = generator.add_track(song, instrument=inst, density=density, new_instrument=inst is None, sampling=replace(sampling, seed=seed), controls=controls)
    return song


def _checked(controls: Controls | None, time_signature: tuple[int, int], grid: int) -> Controls | None:
    """The controls to apply (None when none is set), checked against the meter before sampling."""
    if controls is None or not controls.active:
        return None
    controls.check(tuple(time_signature), grid)
    return controls


def _pick_genre(generator: Generator, sampling: Sampling) -> str:
    return random.Random(sampling.seed).choice(generator.genres) if generator.genres else V.OTHER_GENRE
