"""Music is generated here, one instrument (track) at a time, always valid.

A ``Song`` is a value: its meter, genre, bar count, tempo and the MMM text of each track (and, read from
a MIDI file, what the file says beyond the text: ``meta``, ``text/meta.py``). The
``Generator`` holds the model and tokenizer (loaded once, passed in) and turns a song into a new
song: ``start``, ``add_track``, ``regenerate_last``, ``remove_last``, ``change_tempo``, ``infill``,
``extend``; with ``takes=N`` each writes N takes as one batch (``batch.py``). Songs of any length (up to ``MAX_BARS``) are written window by window (``window.py``). Every
sampled word is masked by the grammar rules of ``grammar.py`` (``engine.py`` draws them), so a new track always parses,
has exactly the song's number of bars and at least one note. The key/value cache of the text
already read is kept between calls, so adding a track reads only the new words.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace

from mmmgen.generate import progression as P
from mmmgen.generate.batch import fresh_seed, run_rows
from mmmgen.generate.controls import Controls
from mmmgen.generate.engine import Engine
from mmmgen.generate.follow import Follow, TrackFollow, follow_tracks, new_track_follow, song_facts
from mmmgen.generate.grammar import TrackSpec
from mmmgen.generate.sampling import ContextFull, GenerationError, Sampling
from mmmgen.text import vocab as V
from mmmgen.text.chords import ChordSpan
from mmmgen.text.decode import text_to_piece
from mmmgen.text.meta import SongMeta

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
    meta: SongMeta | None = None  # what a MIDI file it was read from says beyond the text (tempo map, names, kits)
    chords: tuple[ChordSpan, ...] = ()  # the progression it follows, quarter notes from its start (its chord track)

    @property
    def header(self) -> str:
        return f"{V.PIECE_START} {V.time_signature(*self.time_signature)} {V.genre(self.genre)}"

    @property
    def text(self) -> str:
        """The song's MMM text: the chord track first when it has chords, then its tracks."""
        if not self.chords:
            return " ".join([self.header, *self.tracks])
        from mmmgen.text.chord_track import chord_track_text

        chords = chord_track_text(self.chords, self.n_bars, V.bar_steps(self.time_signature, 12), 12)
        return " ".join([self.header, chords, *self.tracks])

    @property
    def instruments(self) -> list[tuple[int, bool]]:
        """``(program, is_drum)`` of each track, in order."""
        return [(t.program, t.is_drum) for t in text_to_piece(self.text).tracks]

    @classmethod
    def from_text(cls, text: str, tempo: float = 120.0, n_bars: int | None = None, meta: SongMeta | None = None) -> Song:
        """A song from MMM text (e.g. a prompt); tracks are kept word for word."""
        piece = text_to_piece(text)
        tracks, current = [], None
        for word in text.split():
            if word == V.TRACK_START:
                current = [word]
            elif current is not None:
                current.append(word)
                if word == V.TRACK_END:
                    if current[1] != V.chord_track_inst():  # the chord track is ``chords``
                        tracks.append(" ".join(current))
                    current = None
        bars = n_bars or piece.n_bars or 8
        return cls(piece.time_signature, piece.genre or V.OTHER_GENRE, bars, piece.tempo or tempo, tuple(tracks), meta,
                   tuple(piece.chords))


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
    ``remove_last``, ``change_tempo``, ``infill``, ``extend``. Each returns a new ``Song``, or with
    ``takes=N`` a list of N ``Take`` s decoded as one batch. Long songs are written window by window
    (``window.py``)."""

    # --- song operations -----------------------------------------------------------------
    def start(
        self, genre: str | None = None, time_signature=(4, 4), n_bars: int = 8, tempo: float = 120.0, takes: int | None = None, **track
    ) -> Song | list[Take]:
        """A new song with one track; ``genre=None`` lets the model choose it (with ``takes``, per take from its seed)."""
        sampling = track.get("sampling") or Sampling()
        if takes is not None:
            def program(seed):
                chosen = self.known_genre(genre) if genre else _pick_genre(self, replace(sampling, seed=seed))
                song = Song(tuple(time_signature), chosen, n_bars, tempo)
                rest = {k: v for k, v in track.items() if k not in ("sampling", "chords")}
                song = self._with_chords(song, track.get("chords"))
                return self._add_program(song, self._track_spec(song, **rest), seed)

            return self._takes(program, sampling, takes)
        genre = self.known_genre(genre) if genre else _pick_genre(self, sampling)
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
        chords=None,
        chord_rule: str = "loose",
        follow: Follow | None = None,
    ) -> Song | list[Take]:
        """The song with one more track.

        Args:
            instrument: force ``INST=`` (``(program, is_drum)``); None lets the model choose.
            density: force the DENSITY level; None lets the model choose.
            new_instrument: when the model chooses, only instruments the song does not have.
            sampling: temperature / top-k / top-p / seed.
            takes: None returns the song; N returns N ``Take`` s (seeds ``seed``, ``seed + 1``, ...).
            controls: musical controls the new track obeys (scale, range, polyphony, note lengths).
            chords: the progression the song follows from now on (a string such as ``"Am F C G"``, a
                chord CSV / MIDI / MusicXML file or ``ChordSpan`` s; ``progression.load_chords``); None: the song's own.
            chord_rule: ``strict``, ``loose`` or ``off`` (``harmony.py``): how the new track follows the chords.
            follow: the song-derived rules (``follow.py``; None: the defaults, ``Follow(free=True)``: off).
                A new track has only the tonal one, when it will be the bass and a key is known.
        """
        song = self._with_chords(song, chords)
        spec = self._track_spec(song, instrument, density, new_instrument, controls, chord_rule, follow)
        return self._run_add(song, spec, sampling, takes)

    def _run_add(self, song: Song, spec: TrackSpec, sampling: Sampling | None, takes: int | None) -> Song | list[Take]:
        sampling = sampling or Sampling()
        if takes is not None:
            return self._takes(lambda seed: self._add_program(song, spec, seed), sampling, takes)
        return self._drive(self._add_program(song, spec, sampling.seed), sampling)

    def regenerate_last(self, song: Song, takes: int | None = None, **track) -> Song | list[Take]:
        """The song with its last track written anew (same instrument unless another is forced).

        On a song with other tracks, the new track follows the old one (``follow.py``: its register,
        drum kit and notes per bar, the song's key); ``follow=Follow(free=True)`` turns that off.
        """
        if not song.tracks:
            msg = "the song has no track to regenerate"
            raise GenerationError(msg)
        last = song.instruments[-1]
        track.setdefault("instrument", last)
        rest = self.remove_last(song)
        if len(song.tracks) < 2 or track.get("instrument") != last:
            return self.add_track(rest, takes=takes, **track)
        follow, sampling = track.pop("follow", None), track.pop("sampling", None)
        rest = self._with_chords(rest, track.pop("chords", None))
        spec = self._track_spec(rest, **track)
        _, tracks = _split(song)
        rules = None if follow is not None and follow.free else TrackFollow.build(
            song_facts(tracks, range(song.n_bars)), len(tracks) - 1, follow, spec.controls)
        return self._run_add(rest, replace(spec, follow=_beside_chords(rules, spec.harmony)), sampling, takes)

    def extend(self, song: Song, bars: int, sampling: Sampling | None = None, takes: int | None = None,
               controls: Controls | None = None, chords=None, chord_rule: str | None = None, follow: Follow | None = None,
               **track_kwargs) -> Song | list[Take]:
        """The song with ``bars`` more bars on every track; every earlier bar stays word for word.

        Window by window (``window.py``): the model reads the most recent bars of every track (as
        many as its context holds) and writes the new bars track by track under the grammar masks.
        Each track keeps its instrument and density; ``controls`` bind the notes of the new bars of
        every track (drums exempt). The new bars follow ``chords`` (see ``add_track``) or else the song's
        own progression, looped, under ``chord_rule`` (default: ``loose`` when the song has chords or
        ``chords`` are given, else ``off``; a rule asked for on a song without chords follows the chords
        read from its notes), and
        each track (``follow.py``: register, drum kit, notes per bar, the key; ``follow=Follow(free=True)``:
        not). Other ``track_kwargs`` (an instrument, a density) do not apply to
        bars that continue a track, so any given is an error. Window ``w`` draws
        track ``i`` with seed ``seed + w * SEED_STRIDE + i``.
        """
        if track_kwargs:
            msg = f"extend takes no {', '.join(sorted(track_kwargs))}: new bars keep each track's instrument and density"
            raise GenerationError(msg)
        if not song.tracks:
            msg = "the song has no track to extend"
            raise GenerationError(msg)
        if not 1 <= int(bars) <= MAX_BARS - song.n_bars:
            msg = f"bars must be in 1..{MAX_BARS - song.n_bars} (a song has at most {MAX_BARS} bars; this one has {song.n_bars})"
            raise GenerationError(msg)
        sampling = sampling or Sampling()
        controls = _checked(controls, song.time_signature, self.grid)
        harmony = {"chords": chords, "chord_rule": _rule_or_default(chord_rule, song, chords)}
        if takes is not None:
            return self._takes(lambda seed: self._extend_program(song, int(bars), seed, controls, follow=follow, **harmony), sampling, takes)
        return self._drive(self._extend_program(song, int(bars), sampling.seed, controls, follow=follow, **harmony), sampling)

    def _check(self, song: Song) -> None:
        """Every track parses strictly, has exactly the song's bars and at least one note (else a bug)."""
        piece = text_to_piece(song.text, self.grid, strict=True)
        assert all(t.n_bars == song.n_bars and t.notes for t in piece.tracks), "constraints failed"

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
        controls: Controls | None = None, chords=None, chord_rule: str | None = None, follow: Follow | None = None,
    ) -> Song | list[Take]:
        """The song with bars of one track written anew, conditioned on everything else (bar-fill).

        Args:
            track: the track's index in the song (0-based).
            bars: bar indexes (0-based); None regenerates the whole track.
            takes: None returns the song; N returns N ``Take`` s (seeds ``seed``, ``seed + 1``, ...).
            controls: musical controls the notes of the new bars obey (a note held into them keeps its pitch).
            chords, chord_rule: the progression the new bars follow (see ``add_track``; default: the
                song's own, or the chords read from its other tracks) and how strictly.
            follow: the song-derived rules (``follow.py``: the track's register, drum kit, notes per
                bar, the key); None: the defaults, ``Follow(free=True)``: off.

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
        song, harmony = self._infill_harmony(song, track, chords, _rule_or_default(chord_rule, song, chords), controls)
        if takes is not None:
            return self._takes(lambda seed: self._infill_program(song, track, bars, seed, controls, harmony, follow), sampling, takes)
        return self._drive(self._infill_program(song, track, bars, sampling.seed, controls, harmony, follow), sampling)

    # --- programs: each operation once, run alone (``_drive``) or as a batch of takes (``_takes``) ----------
    def _track_spec(self, song: Song, instrument=None, density=None, new_instrument: bool = False, controls: Controls | None = None,
                    chord_rule: str = "loose", follow: Follow | None = None, from_song: bool = True) -> TrackSpec:
        if density is not None and not 0 <= density < self.density_levels:
            msg = f"density must be in 0..{self.density_levels - 1}, got {density}"
            raise GenerationError(msg)
        instruments = None
        if instrument is not None:
            instruments = [instrument]
        elif new_instrument:
            taken = set(song.instruments)
            instruments = [k for k in self.table.inst if k not in taken]
        controls = _checked(controls, song.time_signature, self.grid)
        harmony = P.rule_for(song, chord_rule, controls.scale if controls else None, self.grid)
        rules = _beside_chords(new_track_follow(_split(song)[1], follow, controls, instrument, from_song), harmony)
        return TrackSpec(song.n_bars, song.time_signature, instruments, density, controls=controls, harmony=harmony, follow=rules)

    def _with_chords(self, song: Song, chords) -> Song:
        """The song over ``chords`` (None: as it is)."""
        return song if chords is None else P.with_chords(song, chords, self.grid)

    def _infill_harmony(self, song: Song, track: int, chords, chord_rule: str, controls: Controls | None):
        """The song with the chords its infilled bars follow (given ones are written into it; those read
        from its other tracks are not), and the chord rule of its track ``track``."""
        if chord_rule == "off":
            return self._with_chords(song, chords), P.rule_for(song, chord_rule)
        song = self._with_chords(song, chords)
        over = replace(song, chords=P.song_chords(song, self.grid, track))
        bass = True if P.lowest_track(song, self.grid) == track else None
        return song, P.rule_for(over, chord_rule, controls.scale if controls else None, self.grid, bass, leave_out=track)

    def _add_program(self, song: Song, spec: TrackSpec, seed: int | None):
        """Program: the song with one more track (``spec``), window by window, drawn with ``seed``."""
        from mmmgen.generate.window import split_song, write_track

        header, others = split_song(song.text)
        if song.chords and P.knows_chords(self):
            others = [P.chord_track_words(song, grid=self.grid), *others]
        target = yield from write_track(self, header, others, spec.n_bars, spec, seed)
        text = target.text()
        piece = text_to_piece(f"{V.PIECE_START} {V.time_signature(*spec.time_signature)} {text}", self.grid, strict=True)
        assert piece.tracks[0].n_bars == spec.n_bars and piece.tracks[0].notes, "constraints failed"
        return replace(song, tracks=(*song.tracks, text))

    def _infill_program(self, song: Song, track: int, bars: list[int], seed: int | None, controls: Controls | None = None,
                        harmony=None, follow: Follow | None = None):
        """Program: ``bars`` (sorted, valid) of track ``track`` written anew; fill ``i`` drawn with ``seed + i``."""
        from mmmgen.generate.window import infill_tracks, split_song

        header, tracks = split_song(song.text)
        rules = _beside_chords(follow_tracks(tracks, follow, controls, near=bars)[track], harmony)
        spec = TrackSpec(1, song.time_signature, controls=controls, harmony=harmony, follow=rules)
        if song.chords and P.knows_chords(self):  # the chord track in view, first
            tracks = yield from infill_tracks(self, header, [P.chord_track_words(song, grid=self.grid), *tracks], track + 1, bars, spec, seed)
            tracks = tracks[1:]
        else:
            tracks = yield from infill_tracks(self, header, tracks, track, bars, spec, seed)
        result = replace(song, tracks=tuple(t.text() if k == track else old
                                            for k, (t, old) in enumerate(zip(tracks, song.tracks, strict=True))))
        assert text_to_piece(result.text, self.grid, strict=True).tracks[track].n_bars == song.n_bars
        return result

    def _extend_program(self, song: Song, bars: int, seed: int | None, controls: Controls | None = None, chords=None,
                        chord_rule: str = "loose", follow: Follow | None = None, density: int | None = None):
        """Program: every track with ``bars`` more bars (``window.extend_tracks``), over the song's chords carried on
        (``density``: the level the tracks were asked for, which every window then reads)."""
        from mmmgen.generate.window import extend_tracks, split_song

        header, tracks = split_song(song.text)
        longer = replace(song, n_bars=song.n_bars + bars)
        if chord_rule != "off" or chords is not None:
            longer = replace(longer, chords=P.extended_chords(song, bars, chords, self.grid))
        scale = controls.scale if controls else None
        lowest = P.lowest_track(song, self.grid)
        rules = [P.rule_for(longer, chord_rule, scale, self.grid, True if k == lowest else None, leave_out=k) for k in range(len(tracks))]
        context = [P.chord_track_words(longer, grid=self.grid)] if longer.chords and P.knows_chords(self) else []
        for k, t in enumerate(tracks):
            if len(t.bars) != song.n_bars:
                msg = f"track {k + 1} has {len(t.bars)} bars, the song {song.n_bars}: every track needs the song's bars to be extended"
                raise GenerationError(msg)
        follows = follow_tracks(tracks, follow, controls)
        specs = [TrackSpec(song.n_bars + bars, song.time_signature, density=density, controls=controls, harmony=rule, follow=_beside_chords(f, rule))
                 for rule, f in zip(rules, follows, strict=True)]
        tracks = yield from extend_tracks(self, header, tracks, bars, specs, seed, context)
        kept = longer.chords if song.chords or chords is not None else ()  # chords read from the notes stay unwritten
        result = replace(longer, tracks=tuple(t.text() for t in tracks), chords=kept)
        self._check(result)
        return result

    def _drive(self, program, sampling: Sampling):
        """Run one program request by request through ``_sample_words`` (the single-song path).

        A window that overflows the context (``ContextFull``) is thrown into the program, which
        writes it again with fewer bars (``window.write_span``) or lets the error through.
        """
        try:
            request = next(program)
            while True:
                text, state, seed = request
                try:
                    words = self._sample_words(text, state, replace(sampling, seed=seed))
                except ContextFull as exc:
                    request = program.throw(exc)
                    continue
                request = program.send(words)
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
    chords=None,
    chord_rule: str = "loose",
    follow: Follow | None = None,
) -> Song | list[Take]:
    """A piece of ``tracks`` new tracks (after the prompt's, if any); track i uses ``instruments[i]``.

    ``chords`` (a progression, a chord file or spans: ``progression.load_chords``; looped to the
    piece's length) and ``chord_rule`` (``strict``/``loose``/``off``): every new track follows
    the chords. A model that knows chords writes the chord track itself first when none is given
    (seed ``seed - 1``); a prompt keeps its own chords.

    Track ``i`` is drawn with seed ``seed + i``. Without a prompt, a piece longer than the model's
    window is written as its first window (every track), then extended (``Generator.extend``); a
    prompt keeps all its bars. ``takes=N``: N ``Take`` s of the whole piece, decoded as one batch
    (each row goes on to its next track as soon as its last one ends).
    """
    sampling = sampling or Sampling()
    instruments = list(instruments or [])
    more = 0 if prompt else max(0, n_bars - generator.window)
    if not prompt and n_bars > MAX_BARS:
        msg = f"a song has at most {MAX_BARS} bars, got {n_bars}"
        raise GenerationError(msg)

    def program(seed):
        pick = replace(sampling, seed=seed)
        song = prompt or Song(tuple(time_signature), generator.known_genre(genre) if genre else _pick_genre(generator, pick),
                              n_bars - more, tempo)
        song = yield from P.song_with_chords(generator, song, chords, chord_rule, n_bars if not prompt else song.n_bars,
                                             None if seed is None else seed - 1, controls)
        for i in range(tracks):
            inst = instruments[i] if i < len(instruments) else None
            spec = generator._track_spec(song, inst, density, new_instrument=inst is None, controls=controls, chord_rule=chord_rule,
                                         follow=follow, from_song=prompt is not None)
            song = yield from generator._add_program(song, spec, None if seed is None else seed + i)
        if more and song.tracks:
            song = yield from generator._extend_program(song, more, None if seed is None else seed + tracks,
                                                             _checked(controls, song.time_signature, generator.grid),
                                                             chord_rule=chord_rule, follow=follow, density=density)
        return song

    if takes is not None:
        return generator._takes(program, sampling, takes)
    return generator._drive(program(sampling.seed), sampling)


def _rule_or_default(chord_rule: str | None, song: Song, chords) -> str:
    """The chord rule of new bars in a song: as asked, else ``loose`` over chords it has or is given, else ``off``
    (reading chords from the notes of a dense song costs several times the words' time: asked for only)."""
    return chord_rule or ("loose" if chords is not None or song.chords else "off")


def _beside_chords(rules: TrackFollow | None, harmony) -> TrackFollow | None:
    """A track under a chord rule has its tonal centre from the chords: the song-derived rules drop theirs."""
    return replace(rules, tonic=None) if rules is not None and harmony is not None else rules


def _checked(controls: Controls | None, time_signature: tuple[int, int], grid: int) -> Controls | None:
    """The controls to apply (None when none is set), checked against the meter before sampling."""
    if controls is None or not controls.active:
        return None
    controls.check(tuple(time_signature), grid)
    return controls


def _split(song: Song):
    from mmmgen.generate.window import split_song

    return split_song(song.text)


def _pick_genre(generator: Generator, sampling: Sampling) -> str:
    return random.Random(sampling.seed).choice(generator.genres) if generator.genres else V.OTHER_GENRE
