"""Follow the user's song: rules derived from the song itself, for new music written into it.

When ``extend``, ``infill``, ``regenerate_last`` (on a song with other tracks) or a prompt adds
music to an existing song, each track's new notes follow what that track already does:

* ``register_rule``: a pitched track's new notes stay within its own range in the song, widened by
  a margin (``Follow.register_margin`` semitones, default 2);
* ``kit_rule``: a drum track's new hits use only the drum pitches it already uses;
* ``tonal_rule``: with a key (given by a scale control, or estimated from the song), each new bar of
  a pitched track starts on a note of the tonic triad (the bass, its lowest track: on the tonic or
  fifth), and the last new bar on the tonic. Chosen over leaning the bass alone because it was
  measured: over 20 four-track pieces generated with a scale lock, ``estimate_key`` named the key
  (or its relative) for 9 without the rule, 11 with the bass alone leaning, 16 with this rule
  (``benchmarks/results/follow.md``);
* ``density_rule``: a track's new bars keep roughly the notes per bar of its recent bars.

``song_facts`` derives what the rules need (range, kit, notes per bar, key, the bass) from the
song's words: a pure function. ``TrackFollow`` holds one track's share of them and narrows the
grammar's mask like the controls do (``grammar.allowed``), with one difference: these rules only
lean. A rule that would leave no word is skipped (the grammar, the explicit controls and the rules
before it stand), and an explicit control wins over the song-derived rule of the same kind
(``--pitch-range`` over the register; ``--scale`` names the key). ``Follow(free=True)`` (``--free``)
turns them all off.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from mmmgen.generate.controls import _TONIC, ControlError, estimate_key, parse_scale
from mmmgen.generate.grammar import IN_BAR, TrackState, VocabTable
from mmmgen.text import vocab as V
from mmmgen.text.fill import TrackWords

RECENT_BARS = 4  # the bars whose notes per bar a track's new bars keep
ENDING = 0.25  # a song's last bars with fewer notes (all tracks) than this share of its median bar are its ending
DENSITY_LOW, DENSITY_HIGH = 0.5, 1.5  # a new bar's notes between these multiples of the recent mean (+1 above)
GM_BASSES = range(32, 40)  # General MIDI's bass programs (Acoustic Bass .. Synth Bass 2)


@dataclass(frozen=True)
class Follow:
    """How new music follows the song (the song-derived rules); ``Follow(free=True)``: not at all.

    Attributes:
        free: turn every song-derived rule off (``--free``).
        register_margin: semitones a pitched track's new notes may go beyond its own range (None: any pitch).
        whole_kit: a drum track's new hits may use any drum, not only those it already uses.
        tonal: the bass leans to the key's tonic and fifth (the key: a scale control, else the song's).
        density: new bars keep roughly the notes per bar of the track's recent bars.
    """

    free: bool = False
    register_margin: int | None = 2
    whole_kit: bool = False
    tonal: bool = True
    density: bool = True

    def __post_init__(self) -> None:
        if self.register_margin is not None and not 0 <= self.register_margin <= 127:
            msg = f"the register margin must be 0..127 semitones (or None: off), got {self.register_margin}"
            raise ControlError(msg)


@dataclass(frozen=True)
class TrackFacts:
    """What one track of a song does: its notes' range, pitches, notes per recent bar and centre."""

    is_drum: bool
    low: int | None  # lowest and highest NOTE_ON pitch (None: no note)
    high: int | None
    pitches: frozenset[int]
    notes_per_bar: float  # mean NOTE_ON per bar over the recent bars
    centre: float | None  # median NOTE_ON pitch
    program: int | None = None


@dataclass(frozen=True)
class SongFacts:
    tracks: tuple[TrackFacts, ...]
    key: str | None  # ``estimate_key`` of the pitched tracks ("A:minor"); None without pitched notes
    bass: int | None  # index of the lowest pitched track (lowest median pitch)


def _note_ons(bar: Iterable[str]) -> list[int]:
    out = []
    for word in bar:
        w = V.parse_word(word)
        if w.kind == V.NOTE_ON and (p := V.parse_int(w.value, 0, V.N_PITCHES - 1)) is not None:
            out.append(p)
    return out


def _instrument(track: TrackWords) -> tuple[int, bool] | None:
    for word in track.head:
        w = V.parse_word(word)
        if w.kind == V.INST:
            return V.parse_inst(w.value)
    return None


def recent_bars(n_bars: int, near: Sequence[int] | None, count: int = RECENT_BARS, totals: Sequence[int] = ()) -> list[int]:
    """The bars whose density new bars keep: the last ``count`` (``near`` None), else the ``count``
    bars nearest the bars ``near`` that are not among them (earlier first on a tie), or every bar
    when ``near`` holds them all (a whole track rewritten).

    ``totals`` (notes per bar of the whole song): the last bars are taken before the song's ending,
    the bars at its end with fewer than ``ENDING`` times its median bar's notes (a final chord, a
    fade, silence): a song continued goes on as it played, not as it stopped.
    """
    if not near:
        end = n_bars
        playing = [t for t in totals if t > 0]
        if len(totals) == n_bars and playing:
            least = ENDING * float(np.median(playing))
            while end > 0 and totals[end - 1] < least:
                end -= 1
        end = end or n_bars
        return list(range(max(0, end - count), end))
    skip = set(near)
    rest = [b for b in range(n_bars) if b not in skip]
    if not rest:
        return list(range(n_bars))
    return sorted(sorted(rest, key=lambda b: (min(abs(b - n) for n in skip), b))[:count])


def track_facts(track: TrackWords, recent: Sequence[int]) -> TrackFacts:
    """The facts of one track; ``recent``: the bar indexes its notes per bar are measured over."""
    inst = _instrument(track)
    is_drum = bool(inst and inst[1])
    pitches = [p for bar in track.bars for p in _note_ons(bar)]
    counts = [len(_note_ons(track.bars[b])) for b in recent if 0 <= b < len(track.bars)]
    return TrackFacts(
        is_drum, min(pitches, default=None), max(pitches, default=None), frozenset(pitches),
        sum(counts) / len(counts) if counts else 0.0, float(np.median(pitches)) if pitches else None,
        None if inst is None or inst[1] else inst[0],
    )


def song_facts(tracks: Sequence[TrackWords], near: Sequence[int] | None = None) -> SongFacts:
    """The facts of a song's tracks (``window.split_song``): a pure function of their words.

    ``near``: the bars about to be rewritten (notes per bar are measured on the bars nearest
    them); None: new bars come after the song's last (notes per bar of its last bars).
    """
    n_bars = max((len(t.bars) for t in tracks), default=0)
    totals = [sum(len(_note_ons(t.bars[b])) for t in tracks if b < len(t.bars)) for b in range(n_bars)]
    recent = recent_bars(n_bars, near, totals=totals)
    facts = tuple(track_facts(t, recent) for t in tracks)
    weights = np.zeros(12)
    for t, f in zip(tracks, facts, strict=True):
        if not f.is_drum:
            for bar in t.bars:
                for p in _note_ons(bar):
                    weights[p % 12] += 1
    try:
        key = estimate_key(weights)
    except ControlError:  # no pitched notes, or one pitch class only
        key = None
    pitched = [(f.centre, k) for k, f in enumerate(facts) if not f.is_drum and f.centre is not None]
    return SongFacts(facts, key, min(pitched)[1] if pitched else None)


def key_tonic(key: str) -> int:
    """The tonic's pitch class (0 = C) of a key or scale name (``"D:minor"``, ``"F#:dorian"``)."""
    parse_scale(key)  # a bad name is a ControlError
    return _TONIC[key.strip().replace(" ", ":", 1).partition(":")[0].lower()]


@dataclass(frozen=True)
class TrackFollow:
    """One track's song-derived rules (None: that rule is off), applied by ``narrow``."""

    is_drum: bool = False
    register: tuple[int, int] | None = None  # lowest, highest new pitch
    kit: frozenset[int] | None = None  # drum pitches allowed
    tonic: int | None = None  # the key's tonic pitch class (None: no tonal rule)
    third: int | None = None  # the key's third (pitch class)
    bass: bool = False  # the song's bass: bars start on the tonic or fifth
    density: tuple[int, int] | None = None  # fewest, most new notes per bar

    @classmethod
    def build(cls, facts: SongFacts, track: int | None, options: Follow | None = None, controls=None,
              bass: bool | None = None) -> TrackFollow | None:
        """The rules of track ``track`` of ``facts`` (None: a new track, only the tonal rule), or None when none applies.

        ``controls``: the explicit ones (their pitch range replaces the register, their scale
        names the key). ``bass``: whether the track is the song's bass (None: ``facts.bass``).
        """
        options = options or Follow()
        if options.free:
            return None
        own = facts.tracks[track] if track is not None else None
        is_drum = bool(own and own.is_drum)
        register = kit = density = tonic = None
        if own is not None and not is_drum and own.low is not None and options.register_margin is not None \
                and getattr(controls, "pitch_range", None) is None:
            m = options.register_margin
            register = (max(0, own.low - m), min(V.N_PITCHES - 1, own.high + m))
        if own is not None and is_drum and own.pitches and not options.whole_kit:
            kit = own.pitches
        if own is not None and options.density:
            mean = own.notes_per_bar
            density = (math.floor(DENSITY_LOW * mean), math.ceil(DENSITY_HIGH * mean) + 1 if mean > 0 else 0)
        key = getattr(controls, "scale", None) or facts.key
        third = None
        if options.tonal and key is not None and not is_drum:
            tonic = key_tonic(key)
            third = (tonic + 3) % 12 if (tonic + 3) % 12 in parse_scale(key) else (tonic + 4) % 12
        is_bass = bass if bass is not None else facts.bass == track
        rules = cls(is_drum, register, kit, tonic, third, bool(is_bass and tonic is not None), density)
        return None if rules == cls(is_drum) else rules

    def narrow(self, s: TrackState, v: VocabTable, mask: np.ndarray) -> np.ndarray:
        """``mask`` and each follow rule that leaves some word (the rules lean; they never empty it)."""
        if s.phase != IN_BAR:
            return mask
        for rule in FOLLOW_RULES:
            narrowed = mask & rule(s, v, self)
            if narrowed.any():
                mask = narrowed
        return mask


# --- the rules: each returns the words it allows (True) among all words --------------------------
def _all(v: VocabTable) -> np.ndarray:
    return v.cached("all", lambda: range(v.size))


def _only_note_on(v: VocabTable, key, pitches: Iterable[int]) -> np.ndarray:
    """Every word but the NOTE_ONs of pitches outside ``pitches``."""
    keep = set(pitches)
    return v.cached(key, lambda: np.flatnonzero(~v.family("note_on") | v.mask(v.note_on[sorted(keep)])))


def register_rule(s: TrackState, v: VocabTable, f: TrackFollow) -> np.ndarray:
    """NOTE_ON only within the track's own range (widened by the margin)."""
    if f.register is None or f.is_drum or s.is_drum:
        return _all(v)
    low, high = f.register
    return _only_note_on(v, ("follow-register", low, high), range(low, high + 1))


def kit_rule(s: TrackState, v: VocabTable, f: TrackFollow) -> np.ndarray:
    """A drum track's NOTE_ON only for the drums it already uses."""
    if f.kit is None or not f.is_drum:
        return _all(v)
    return _only_note_on(v, ("follow-kit", f.kit), f.kit)


def tonal_rule(s: TrackState, v: VocabTable, f: TrackFollow) -> np.ndarray:
    """A new bar's first note is on the tonic triad (the bass: the tonic or fifth); in the last new bar, the tonic."""
    if f.tonic is None or s.bar_notes > 0 or s.is_drum:
        return _all(v)
    fifth = (f.tonic + 7) % 12
    if s.last_bar and not s.spec.fill:
        classes = (f.tonic,)
    else:
        classes = (f.tonic, fifth) if f.bass else (f.tonic, f.third, fifth)
    return _only_note_on(v, ("follow-tonal", classes), (p for p in range(V.N_PITCHES) if p % 12 in classes))


def density_rule(s: TrackState, v: VocabTable, f: TrackFollow) -> np.ndarray:
    """No NOTE_ON past the most notes per bar; while a bar has fewer than the fewest, it may not end
    nor let time run to its end (a note must come first)."""
    if f.density is None:
        return _all(v)
    fewest, most = f.density
    if s.bar_notes >= most:
        return v.cached("follow-no-note-on", lambda: np.flatnonzero(~v.family("note_on")))
    if s.bar_notes < fewest and s.t < s.bar_len:
        m = _all(v).copy()
        end = s.spec.end_word
        if end in v.ids:
            m[v.ids[end]] = False
        left = s.bar_len - s.t
        late = v.time_delta[left:]
        m[late[late >= 0]] = False
        return m
    return _all(v)


FOLLOW_RULES = (register_rule, kit_rule, tonal_rule, density_rule)


def follow_tracks(tracks: Sequence[TrackWords], options: Follow | None, controls=None,
                  near: Sequence[int] | None = None) -> list[TrackFollow | None]:
    """Each track's rules (``TrackFollow.build``) over the facts of ``tracks``."""
    if options is not None and options.free:
        return [None] * len(tracks)
    facts = song_facts(tracks, near)
    return [TrackFollow.build(facts, k, options, controls) for k in range(len(tracks))]


def new_track_follow(tracks: Sequence[TrackWords], options: Follow | None, controls=None,
                     instrument: tuple[int, bool] | None = None, from_song: bool = True) -> TrackFollow | None:
    """The rules of a new track added to ``tracks``: the tonal rule only, when a key is known (the
    scale control's, else with ``from_song`` the song's); the track counts as the bass when a General
    MIDI bass is asked for or the song has no pitched track yet."""
    if options is not None and options.free:
        return None
    facts = song_facts(tracks)
    if not from_song:
        facts = SongFacts(facts.tracks, None, facts.bass)
    bass = (instrument is not None and not instrument[1] and instrument[0] in GM_BASSES) or facts.bass is None
    return TrackFollow.build(facts, None, options, controls, bass=bass and not (instrument and instrument[1]))


def _centre(track: TrackWords, last: int = 32) -> tuple[bool, float | None]:
    """Whether ``track`` is a drum track, and the median NOTE_ON pitch of its last ``last`` bars."""
    inst = _instrument(track)
    pitches = [p for bar in track.bars[-last:] for p in _note_ons(bar)]
    return bool(inst and inst[1]), float(np.median(pitches)) if pitches else None


def nearest_first(others: Sequence[TrackWords], target: TrackWords | None) -> list[int]:
    """Indexes of ``others``, nearest ``target`` first: the same role (drums or pitched) first, then
    the closest median pitch (a drum track's nearest pitched tracks are the lowest); without a
    target (a new track) or notes to compare, song order. The model reads the nearest when not all fit."""
    if target is None:
        return list(range(len(others)))
    drum, centre = _centre(target)

    def distance(k: int) -> tuple:
        other_drum, other = _centre(others[k])
        gap = abs(other - centre) if other is not None and centre is not None else math.inf
        return other_drum != drum, gap, k

    return sorted(range(len(others)), key=distance)
