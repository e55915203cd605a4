"""Music is generated here, one instrument (track) at a time, always valid.

A ``Song`` is a value: its meter, genre, bar count, tempo and the MMM text of each track. The
``Generator`` holds the model and tokenizer (loaded once, passed in) and turns a song into a new
song: ``start``, ``add_track``, ``regenerate_last``, ``remove_last``, ``change_tempo``. Every
sampled word is masked by the grammar rules of ``grammar.py`` (``engine.py`` draws them), so a new track always parses,
has exactly the song's number of bars and at least one note. The key/value cache of the text
already read is kept between calls, so adding a track reads only the new words.

Takes: ``start``, ``add_track``, ``regenerate_last``, ``infill`` and ``generate_song`` accept
``takes=N`` and then return N ``Take`` s (a song, its seed, its log-likelihood per note), decoded
as one batch (``batch.py``); ``rank_takes`` orders them best first. Each operation is written once,
as a *program* (a Python generator that yields what to read and how to draw, and receives the
words): ``takes=None`` runs it one request at a time through ``Engine._sample_words`` (today's
path, unchanged), ``takes=N`` runs N of them, one per seed, through ``batch.run_rows``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from mmmgen.generate.batch import fresh_seed, run_rows
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


@dataclass(frozen=True)
class Take:
    """One of several takes of an operation (``takes=N``).

    Attributes:
        song: the song this take made.
        seed: its seed: the operation with ``sampling.seed = seed`` and ``takes=None`` makes the same song.
        log_likelihood_per_note: the words the model drew for this take (every word of the new track(s)
            or filled bars, grammar-forced ones included; not the prompt, not a genre picked at
            random), each scored with the natural log of its probability under the model's own
            distribution (softmax of the logits at temperature 1, without the grammar mask, top-k or
            top-p), summed and divided by the number of those words that are ``NOTE_ON`` (at least 1).
            Higher is more typical of what the model learned.
    """

    song: Song
    seed: int
    log_likelihood_per_note: float


def rank_takes(takes) -> list[Take]:
    """The takes best first: highest log-likelihood per note first (ties keep their order)."""
    return sorted(takes, key=lambda t: -t.log_likelihood_per_note)


MAX_TAKES = 64


def take_seeds(seed: int | None, takes: int) -> list[int]:
    """Seeds of ``takes`` takes: ``seed + k`` for take k (a fresh random base when ``seed`` is None)."""
    if isinstance(takes, bool) or not isinstance(takes, int) or not 1 <= takes <= MAX_TAKES:
        msg = f"takes must be a whole number in 1..{MAX_TAKES}, got {takes!r}"
        raise GenerationError(msg)
    base = fresh_seed() if seed is None else int(seed)
    return [base + k for k in range(takes)]


class Generator(Engine):
    """Songs made and changed one track at a time: ``start``, ``add_track``, ``regenerate_last``,
    ``remove_last``, ``change_tempo``, ``infill``. Each returns a new ``Song``, or with ``takes=N``
    a list of N ``Take`` s decoded as one batch."""

    # --- song operations -----------------------------------------------------------------
    def start(
        self, genre: str | None = None, time_signature=(4, 4), n_bars: int = 8, tempo: float = 120.0, takes: int | None = None, **track
    ) -> Song | list[Take]:
        """A new song with one track; ``genre=None`` lets the model choose it (with ``takes``, per take from its seed)."""
        sampling = track.get("sampling") or Sampling()
        if takes is not None:
            def program(seed):
                chosen = V.normalize_genre(genre) if genre else _pick_genre(self, replace(sampling, seed=seed))
                song = Song(tuple(time_signature), chosen, n_bars, tempo)
                rest = {k: v for k, v in track.items() if k != "sampling"}
                return self._add_program(song, self._track_spec(song, **rest), seed)

            return self._takes(program, sampling, takes)
        genre = V.normalize_genre(genre) if genre else _pick_genre(self, sampling)
        song = Song(tuple(time_signature), genre, n_bars, tempo)
        return self.add_track(song, **track)

    def add_track(
        self,
        song: Song,
        instrument: tuple[int, bool] | None = None,
        density: int | None = None,
        new_instrument: bool = False,
        sampling: Sampling | None = None,
        takes: int | None = None,
        controls: Controls | None = None,
    ) -> Song | list[Take]:
        """The song with one more track.

        Args:
            instrument: force ``INST=`` (``(program, is_drum)``); None lets the model choose.
            density: force the DENSITY level; None lets the model choose.
            new_instrument: when the model chooses, only instruments the song does not have.
            sampling: temperature / top-k / top-p / seed.
            takes: None returns the song; N returns N ``Take`` s (seeds ``seed``, ``seed + 1``, ...).
            controls: musical controls the new track obeys (scale, range, polyphony, note lengths).
        """
        spec = self._track_spec(song, instrument, density, new_instrument, controls)
        sampling = sampling or Sampling()
        if takes is not None:
            return self._takes(lambda seed: self._add_program(song, spec, seed), sampling, takes)
        return self._drive(self._add_program(song, spec, sampling.seed), sampling)

    def regenerate_last(self, song: Song, takes: int | None = None, **track) -> Song | list[Take]:
        """The song with its last track written anew (same instrument unless another is forced)."""
        if not song.tracks:
            msg = "the song has no track to regenerate"
            raise GenerationError(msg)
        last = song.instruments[-1]
        track.setdefault("instrument", last)
        return self.add_track(self.remove_last(song), takes=takes, **track)

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

    def infill(
        self, song: Song, track: int, bars: list[int] | None = None, sampling: Sampling | None = None, takes: int | None = None,
        controls: Controls | None = None,
    ) -> Song | list[Take]:
        """The song with bars of one track written anew, conditioned on everything else (bar-fill).

        Args:
            track: the track's index in the song (0-based).
            bars: bar indexes (0-based); None regenerates the whole track.
            takes: None returns the song; N returns N ``Take`` s (seeds ``seed``, ``seed + 1``, ...).
            controls: musical controls the notes of the new bars obey (a note held into them keeps its pitch).

        Every other bar keeps its words. A note that the bar before the span leaves sounding may be
        held into the first new bar (or ends at the bar line); a ``NOTE_HOLD`` in the bar after the
        span continues a note the new bars leave sounding, else it starts the note at the bar line.
        Bar ``i`` of the span is drawn with seed ``seed + i``.
        """
        sampling = sampling or Sampling()
        if not 0 <= track < len(song.tracks):
            msg = f"track must be 1..{len(song.tracks)}, got {track + 1}"
            raise GenerationError(msg)
        bars = sorted(set(range(song.n_bars) if bars is None else bars))
        if not bars or bars[0] < 0 or bars[-1] >= song.n_bars:
            msg = f"bars must be within 1..{song.n_bars}"
            raise GenerationError(msg)
        controls = _checked(controls, song.time_signature, self.grid)
        if takes is not None:
            return self._takes(lambda seed: self._infill_program(song, track, bars, seed, controls), sampling, takes)
        return self._drive(self._infill_program(song, track, bars, sampling.seed, controls), sampling)

    # --- programs: each operation once, run alone (``_drive``) or as a batch of takes (``_takes``) ----------
    def _track_spec(self, song: Song, instrument=None, density=None, new_instrument: bool = False, controls: Controls | None = None) -> TrackSpec:
        if density is not None and not 0 <= density < self.density_levels:
            msg = f"density must be in 0..{self.density_levels - 1}, got {density}"
            raise GenerationError(msg)
        instruments = None
        if instrument is not None:
            instruments = [instrument]
        elif new_instrument:
            taken = set(song.instruments)
            instruments = [k for k in self.table.inst if k not in taken]
        return TrackSpec(song.n_bars, song.time_signature, instruments, density, controls=_checked(controls, song.time_signature, self.grid))

    def _add_program(self, song: Song, spec: TrackSpec, seed: int | None):
        """Program: the song with one more track (``spec``), drawn with ``seed``."""
        words = yield f"{song.text} {V.TRACK_START}", TrackState(spec, self.grid), seed
        text = " ".join([V.TRACK_START, *words])
        piece = text_to_piece(f"PIECE_START {V.time_signature(*spec.time_signature)} {text}", self.grid, strict=True)
        assert piece.tracks[0].n_bars == spec.n_bars and piece.tracks[0].notes, "constraints failed"
        return replace(song, tracks=(*song.tracks, text))

    def _infill_program(self, song: Song, track: int, bars: list[int], seed: int | None, controls: Controls | None = None):
        """Program: ``bars`` (sorted, valid) of track ``track`` written anew; bar ``i`` drawn with ``seed + i``."""
        from mmmgen.text.fill import mask_bars, sounding_at_end, split_words

        piece = split_words(song.text)
        context = mask_bars(song.text, {track: bars}, with_fills=False)
        spec = TrackSpec(1, song.time_signature, controls=controls)
        written: dict[int, list[str]] = {}
        for i, b in enumerate(bars):
            before = written.get(b - 1, piece.tracks[track].bars[b - 1] if b > 0 else [])
            carried, around = sounding_at_end(before), {}
            if controls is not None:  # what the control rules need to know of the bars around
                now = [written.get(k, bar) for k, bar in enumerate(piece.tracks[track].bars)]
                around = fill_context(piece.tracks[track].head, now, b, carried, bars, song.time_signature, self.grid)
            state = TrackState.for_fill(spec, carried, self.grid, **around)
            context += f" {V.FILL_START}"
            words = yield context, state, None if seed is None else seed + i
            context += " " + " ".join(words)
            written[b] = words[:-1]  # without FILL_END
        target = piece.tracks[track]
        target.bars = [written.get(b, bar) for b, bar in enumerate(target.bars)]
        tracks = tuple(target.text() if k == track else t for k, t in enumerate(song.tracks))
        result = replace(song, tracks=tracks)
        assert text_to_piece(result.text, self.grid, strict=True).tracks[track].n_bars == song.n_bars
        return result

    def _drive(self, program, sampling: Sampling):
        """Run one program request by request through ``_sample_words`` (the single-song path)."""
        try:
            request = next(program)
        except StopIteration as stop:  # nothing to draw (e.g. no new track)
            return stop.value
        while True:
            text, state, seed = request
            try:
                request = program.send(self._sample_words(text, state, replace(sampling, seed=seed)))
            except StopIteration as stop:
                return stop.value

    def _takes(self, make_program, sampling: Sampling, takes: int) -> list[Take]:
        """N takes, one program per seed, decoded as one batch (``batch.run_rows``)."""
        seeds = take_seeds(sampling.seed, takes)
        rows = run_rows(self, [make_program(seed) for seed in seeds], sampling)
        return [Take(song, seed, loglik / max(notes, 1)) for seed, (song, loglik, notes) in zip(seeds, rows, strict=True)]


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
    takes: int | None = None,
    controls: Controls | None = None,
) -> Song | list[Take]:
    """A piece of ``tracks`` new tracks (after the prompt's, if any); track i uses ``instruments[i]``.

    Track ``i`` is drawn with seed ``seed + i``. ``takes=N``: N ``Take`` s of the whole piece, decoded
    as one batch (each row goes on to its next track as soon as its last one ends).
    """
    sampling = sampling or Sampling()
    instruments = list(instruments or [])

    def program(seed):
        pick = replace(sampling, seed=seed)
        song = prompt or Song(tuple(time_signature), V.normalize_genre(genre) if genre else _pick_genre(generator, pick), n_bars, tempo)
        for i in range(tracks):
            inst = instruments[i] if i < len(instruments) else None
            spec = generator._track_spec(song, inst, density, new_instrument=inst is None, controls=controls)
            song = yield from generator._add_program(song, spec, None if seed is None else seed + i)
        return song

    if takes is not None:
        return generator._takes(program, sampling, takes)
    return generator._drive(program(sampling.seed), sampling)


def _checked(controls: Controls | None, time_signature: tuple[int, int], grid: int) -> Controls | None:
    """The controls to apply (None when none is set), checked against the meter before sampling."""
    if controls is None or not controls.active:
        return None
    controls.check(tuple(time_signature), grid)
    return controls


def _pick_genre(generator: Generator, sampling: Sampling) -> str:
    return random.Random(sampling.seed).choice(generator.genres) if generator.genres else V.OTHER_GENRE
