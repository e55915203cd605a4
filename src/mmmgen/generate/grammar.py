"""Which word may come next: the grammar of a track as masks over the vocabulary.

A track is generated word by word after ``TRACK_START``. ``TrackState`` follows the words written
so far; each rule below is one small function ``rule(state, table) -> bool mask`` over the
vocabulary (True = allowed) and is tested alone. ``allowed(state, table)`` is their conjunction;
``TrackGrammarProcessor`` applies it as a Hugging Face ``LogitsProcessor``. With every rule on,
any sampled track parses, has exactly the requested bars and at least one note.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from mmmgen.text import vocab as V
from mmmgen.text.vocab import bar_steps

# phases of a track
EXPECT_INST, EXPECT_DENSITY, EXPECT_BAR, IN_BAR, DONE = range(5)


@dataclass
class VocabTable:
    """Token ids of each word family, so masks are built with numpy indexing.

    The masks that do not depend on the state (a whole family, a few structure words) are built
    once and kept (``cached``), so a rule costs a few microseconds per word.
    """

    size: int
    ids: dict[str, int]
    note_on: np.ndarray  # id per pitch (-1 if absent)
    note_off: np.ndarray
    note_hold: np.ndarray
    time_delta: np.ndarray  # id per grid step count (index 0 unused)
    inst: dict[tuple[int, bool], int]
    density: dict[int, int]
    grid: int
    _masks: dict = field(default_factory=dict, repr=False, compare=False)
    note_on_ids: np.ndarray = field(init=False, repr=False, compare=False)  # the NOTE_ON ids in the vocabulary

    def __post_init__(self) -> None:
        self.note_on_ids = self.note_on[self.note_on >= 0]

    @classmethod
    def from_vocab(cls, vocab: dict[str, int], grid: int = 12) -> VocabTable:
        size = max(vocab.values()) + 1

        def family(build: Callable[[int], str], n: int) -> np.ndarray:
            return np.array([vocab.get(build(i), -1) for i in range(n)])

        max_steps = V.max_time_delta_steps(grid)
        deltas = np.array([-1] + [vocab.get(V.time_delta(s, grid), -1) for s in range(1, max_steps + 1)])
        inst = {(p, False): vocab[V.inst(p)] for p in range(V.N_PROGRAMS) if V.inst(p) in vocab}
        if V.inst(0, True) in vocab:
            inst[(0, True)] = vocab[V.inst(0, True)]
        density = {}
        for word, i in vocab.items():
            w = V.parse_word(word)
            if w.kind == V.DENSITY and (level := V.parse_int(w.value, 0, 10_000)) is not None:
                density[level] = i
        return cls(
            size, dict(vocab), family(V.note_on, V.N_PITCHES), family(V.note_off, V.N_PITCHES),
            family(V.note_hold, V.N_PITCHES), deltas, inst, density, grid,
        )

    def mask(self, ids: Iterable[int]) -> np.ndarray:
        m = np.zeros(self.size, bool)
        idx = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids), dtype=np.intp)
        m[idx[idx >= 0]] = True
        return m

    def cached(self, key, ids: Callable[[], Iterable[int]]) -> np.ndarray:
        """The (read-only) mask of ``ids()``, built on first use and kept under ``key``."""
        m = self._masks.get(key)
        if m is None:
            m = self.mask(ids())
            m.flags.writeable = False
            self._masks[key] = m
        return m

    def family(self, name: str) -> np.ndarray:
        """Read-only mask of a word family: ``inst``, ``density``, ``note_on``, ``note_off``,
        ``note_hold`` or ``time_delta``."""
        if name in ("inst", "density"):
            return self.cached(name, lambda: getattr(self, name).values())
        if name == "time_delta":
            return self.cached(name, lambda: self.time_delta[1:])
        return self.cached(name, lambda: getattr(self, name))

    def words(self, *words: str) -> np.ndarray:
        """Read-only mask of a few words (those missing from the vocabulary are left out)."""
        return self.cached(words, lambda: [self.ids.get(w, -1) for w in words])


@dataclass
class TrackSpec:
    """What the caller asks of the next track."""

    n_bars: int = 8
    time_signature: tuple[int, int] = (4, 4)
    instruments: list[tuple[int, bool]] | None = None  # allowed (program, is_drum); None = any
    density: int | None = None  # forced DENSITY level
    max_words_per_bar: int = 400  # past this, the bar may only close (keeps generation bounded)
    fill: bool = False  # writing one bar-fill (FILL_START .. FILL_END) instead of a track
    controls: object | None = None  # a ``controls.Controls`` (its ``narrow`` applies the control rules); None = the grammar alone
    harmony: object | None = None  # a ``harmony.ChordRule`` (the chord rule); None = no chords
    first_bar: int = 0  # the song's bar where this window (or fill) starts: the chord rule reads the song's time
    chord_track: bool = False  # writing the chord track (``chord_track_allowed``) instead of notes
    follow: object | None = None  # a ``follow.TrackFollow`` (the song-derived rules, after the controls); None = none

    @property
    def end_word(self) -> str:
        return V.FILL_END if self.fill else V.BAR_END


@dataclass
class TrackState:
    """Where a track being written stands, updated word by word with ``step``."""

    spec: TrackSpec
    grid: int = 12
    phase: int = EXPECT_INST
    bars_done: int = 0
    t: int = 0  # steps since the bar start
    head: bool = True  # no event yet in this bar: NOTE_HOLD may still come
    open: dict[int, int] = field(default_factory=dict)  # sounding pitch -> onset (steps into the bar)
    carry: set[int] = field(default_factory=set)  # pitches open at the last BAR_END
    notes: int = 0
    words_in_bar: int = 0
    born: dict[int, int] = field(default_factory=dict)  # sounding or carried pitch -> onset, steps from the track start
    after: frozenset[int] = frozenset()  # a fill: pitches the bar after it holds (they may continue its notes)
    is_drum: bool = False  # the track's INST is DRUMS
    program: int | None = None  # the track's GM program (the chord rule finds bass lines by it)
    last_pitch: int | None = None  # the pitch of the latest NOTE_ON (the chord rule keeps new notes near it)
    bar_notes: int = 0  # NOTE_ONs in the current bar (or fill)

    @property
    def bar_len(self) -> int:
        return bar_steps(self.spec.time_signature, self.grid)

    @property
    def last_bar(self) -> bool:
        return self.bars_done == self.spec.n_bars - 1

    @classmethod
    def for_fill(
        cls, spec: TrackSpec, carried: set[int], grid: int = 12, ages: dict[int, int] | None = None,
        after: Iterable[int] = (), is_drum: bool = False, program: int | None = None,
    ) -> TrackState:
        """The state at the start of a fill: inside a bar whose previous bar left ``carried`` sounding.

        ``ages``: how long (steps) each carried note has sounded at the bar line; ``after``: the
        pitches the next bar holds; ``is_drum``: a drum track (the controls need these three).
        """
        ages = ages or {}
        born = {p: -ages.get(p, 0) for p in carried}
        return cls(
            replace(spec, fill=True, n_bars=1), grid, phase=IN_BAR, carry=set(carried), born=born,
            after=frozenset(after), is_drum=is_drum, program=program,
        )

    @property
    def now(self) -> int:
        """Steps from the track (or fill) start."""
        return self.bars_done * self.bar_len + self.t

    def step(self, word: str) -> None:
        """Advance over one word (assumed allowed)."""
        kind, pitch, steps = _read(word, self.grid)
        if self.phase == EXPECT_INST:
            self.phase = EXPECT_DENSITY
            self.is_drum = word == V.inst(0, True)
            self.program = (V.parse_inst(V.parse_word(word).value) or (None,))[0]
        elif self.phase == EXPECT_DENSITY:
            self.phase = EXPECT_BAR
        elif kind == V.BAR_START:
            self.phase, self.t, self.head, self.words_in_bar, self.bar_notes = IN_BAR, 0, True, 0, 0
        elif kind in (V.TRACK_END, V.FILL_END):
            self.phase = DONE
        elif kind == V.BAR_END:
            self.carry, self.open = set(self.open), {}
            self.bars_done += 1
            self.phase = EXPECT_BAR
        elif self.phase == IN_BAR:
            self.words_in_bar += 1
            if kind == V.NOTE_HOLD:
                self.open[pitch] = 0  # a held note may end once time has passed in this bar
                self.carry.discard(pitch)
                return
            if self.head:  # the head of the bar ends: carried pitches not held end at the bar line
                self.head, self.carry = False, set()
                if len(self.born) > len(self.open):
                    self.born = {p: b for p, b in self.born.items() if p in self.open}
            if kind == V.NOTE_ON:
                self.open[pitch] = self.t
                self.born[pitch] = self.now
                self.notes += 1
                self.last_pitch = pitch
                self.bar_notes += 1
            elif kind == V.NOTE_OFF:
                self.open.pop(pitch, None)
                self.born.pop(pitch, None)
            elif kind == V.TIME_DELTA:
                self.t += steps


@lru_cache(maxsize=4096)
def _read(word: str, grid: int) -> tuple[str, int | None, int]:
    """``(kind, pitch, grid steps)`` of a word, parsed once per word (the vocabulary is small)."""
    w = V.parse_word(word)
    steps = (V.parse_time_delta(w.value, grid) or 0) if w.kind == V.TIME_DELTA and w.value is not None else 0
    return w.kind, V.parse_int(w.value, 0, V.N_PITCHES - 1), steps


# --- the rules: each returns the words it allows (True) among all words -------------------
def structure_rule(s: TrackState, v: VocabTable) -> np.ndarray:
    """Words in grammatical order: INST, DENSITY, then bars, then TRACK_END; nothing else."""
    if s.phase == EXPECT_INST:
        return v.family("inst").copy()
    if s.phase == EXPECT_DENSITY:
        return v.family("density").copy()
    if s.phase == EXPECT_BAR:
        return v.words(V.BAR_START, V.TRACK_END).copy()
    if s.phase == IN_BAR:
        end = s.spec.end_word
        families = ("note_on", "note_off", "note_hold", "time_delta")
        return v.cached(("in_bar", end), lambda: np.flatnonzero(np.logical_or.reduce([v.family(f) for f in families]) | v.words(end))).copy()
    return np.zeros(v.size, bool)


def instrument_rule(s: TrackState, v: VocabTable) -> np.ndarray:
    """Only the instruments asked for (a forced one, or those the song does not have yet)."""
    if s.phase != EXPECT_INST or s.spec.instruments is None:
        return np.ones(v.size, bool)
    rest = ~v.family("inst")
    rest[[i for key in s.spec.instruments if (i := v.inst.get(key, -1)) >= 0]] = True
    return rest


def density_rule(s: TrackState, v: VocabTable) -> np.ndarray:
    """A forced density level, when asked."""
    if s.phase != EXPECT_DENSITY or s.spec.density is None:
        return np.ones(v.size, bool)
    rest = ~v.family("density")
    if s.spec.density in v.density:
        rest[v.density[s.spec.density]] = True
    return rest


def bar_count_rule(s: TrackState, v: VocabTable) -> np.ndarray:
    """Exactly ``n_bars`` bars: no BAR_START after the last, no TRACK_END before it."""
    m = np.ones(v.size, bool)
    if s.phase == EXPECT_BAR:
        banned = V.BAR_START if s.bars_done >= s.spec.n_bars else V.TRACK_END
        if banned in v.ids:
            m[v.ids[banned]] = False
    return m


def note_off_rule(s: TrackState, v: VocabTable) -> np.ndarray:
    """NOTE_OFF only for a pitch that sounds and has lasted at least one step."""
    m = ~v.family("note_off")
    if s.open:
        ids = v.note_off[[p for p, onset in s.open.items() if onset < s.t]]
        m[ids[ids >= 0]] = True
    return m


def note_on_rule(s: TrackState, v: VocabTable) -> np.ndarray:
    """NOTE_ON only for a silent pitch, and only while the bar has time left."""
    m = ~v.family("note_on")
    if s.t < s.bar_len:
        silent = np.ones(V.N_PITCHES, bool)
        silent[list(s.open)] = False
        ids = v.note_on[silent]
        m[ids[ids >= 0]] = True
    return m


def hold_rule(s: TrackState, v: VocabTable) -> np.ndarray:
    """NOTE_HOLD only at the head of a bar, for a pitch the previous bar left sounding."""
    m = ~v.family("note_hold")
    if s.head and s.carry:
        ids = v.note_hold[list(s.carry)]
        m[ids[ids >= 0]] = True
    return m


def time_rule(s: TrackState, v: VocabTable) -> np.ndarray:
    """TIME_DELTA only within the bar; an empty track's last bar must leave room for a note."""
    m = ~v.family("time_delta")
    left = s.bar_len - s.t - (1 if s.last_bar and s.notes == 0 and not s.spec.fill else 0)
    fitting = v.time_delta[1 : max(left, 0) + 1]
    m[fitting[fitting >= 0]] = True
    return m


def non_empty_rule(s: TrackState, v: VocabTable) -> np.ndarray:
    """The last bar of a track without notes cannot end: an empty track is impossible."""
    m = np.ones(v.size, bool)
    if s.phase == IN_BAR and s.last_bar and s.notes == 0 and not s.spec.fill and V.BAR_END in v.ids:
        m[v.ids[V.BAR_END]] = False
    return m


def budget_rule(s: TrackState, v: VocabTable) -> np.ndarray:
    """Past ``max_words_per_bar`` a bar may only close its notes and end (bounded generation)."""
    if s.phase != IN_BAR or s.words_in_bar < s.spec.max_words_per_bar:
        return np.ones(v.size, bool)
    closing = v.family("note_off") | v.words(s.spec.end_word)
    if s.notes == 0 and s.last_bar:
        closing |= v.family("note_on")
    return closing


RULES: tuple[Callable[[TrackState, VocabTable], np.ndarray], ...] = (
    structure_rule,
    instrument_rule,
    density_rule,
    bar_count_rule,
    note_off_rule,
    note_on_rule,
    hold_rule,
    time_rule,
    non_empty_rule,
    budget_rule,
)


def allowed(s: TrackState, v: VocabTable, rules=RULES) -> np.ndarray:
    """The words every rule allows next.

    With the standard ``RULES`` the mask comes from ``_allowed_fast``, the same conjunction built
    in one pass (the rules one by one cost ~200 us per word, mostly allocating and and-ing full
    masks; the one pass ~15 us). ``conjunction`` is the reference; the tests check that both agree
    over many states, so a change to a rule must be made in ``_allowed_fast`` too.
    With ``spec.controls`` set, the musical controls (``controls.py``) narrow the mask further,
    then with ``spec.follow`` the song-derived rules (``follow.py``), which never empty it, then with
    ``spec.harmony`` the chord rule (``harmony.py``), which yields a word where it would empty it.
    """
    if s.spec.chord_track:  # its own grammar; a scale control keeps its chords in the scale
        m = chord_track_allowed(s, v)
        return m if s.spec.controls is None else s.spec.controls.narrow_chords(s, v, m)
    m = _allowed_fast(s, v) if rules is RULES else conjunction(s, v, rules)
    controls, harmony, follow = s.spec.controls, s.spec.harmony, s.spec.follow
    m = m if controls is None else controls.narrow(s, v, m)
    m = m if follow is None else follow.narrow(s, v, m)  # the song's own register and kit before the chords
    return m if harmony is None else harmony.narrow(s, v, m)


def conjunction(s: TrackState, v: VocabTable, rules=RULES) -> np.ndarray:
    """The words every rule allows next, rule by rule (the reference for ``allowed``)."""
    m = np.ones(v.size, bool)
    for rule in rules:
        m &= rule(s, v)
    return m


def _allowed_fast(s: TrackState, v: VocabTable) -> np.ndarray:
    """``conjunction(s, v, RULES)``, built in one pass.

    Each rule only narrows its own word family (or a few structure words), and ``structure_rule``
    leaves only the families of the phase, so the mask is the union of each family's allowed part.
    Inside a bar the mask has a spare last slot where the ``-1`` ids of words missing from the
    vocabulary land (cut off at the end), so no id needs filtering.
    """
    spec, phase = s.spec, s.phase
    if phase == IN_BAR:
        m = np.zeros(v.size + 1, bool)
        t, bar_len, sounding = s.t, s.bar_len, s.open
        no_notes_last = s.notes == 0 and s.last_bar
        empty_last = no_notes_last and not spec.fill  # time_rule and non_empty_rule
        over = s.words_in_bar >= spec.max_words_per_bar  # budget_rule: only closing words
        if t < bar_len and (not over or no_notes_last):  # note_on_rule (budget_rule keeps a needed note)
            m[v.note_on_ids] = True
            if sounding:
                m[v.note_on[list(sounding)]] = False
        if sounding:  # note_off_rule
            lasted = [p for p, onset in sounding.items() if onset < t]
            if lasted:
                m[v.note_off[lasted]] = True
        if not over:
            if s.head and s.carry:  # hold_rule
                m[v.note_hold[list(s.carry)]] = True
            left = bar_len - t - (1 if empty_last else 0)  # time_rule
            if left > 0:
                m[v.time_delta[1 : left + 1]] = True
        end = spec.end_word  # structure_rule; non_empty_rule bans BAR_END in an empty track's last bar
        if end in v.ids and not (empty_last and end == V.BAR_END):
            m[v.ids[end]] = True
        return m[: v.size]
    if phase == EXPECT_INST:  # structure_rule and instrument_rule
        if spec.instruments is None:
            return v.family("inst").copy()
        m = np.zeros(v.size + 1, bool)
        m[[v.inst.get(key, -1) for key in spec.instruments]] = True
        return m[: v.size]
    if phase == EXPECT_DENSITY:  # structure_rule and density_rule
        if spec.density is None:
            return v.family("density").copy()
        m = np.zeros(v.size, bool)
        if spec.density in v.density:
            m[v.density[spec.density]] = True
        return m
    if phase == EXPECT_BAR:  # structure_rule and bar_count_rule
        m = v.words(V.BAR_START, V.TRACK_END).copy()
        banned = V.BAR_START if s.bars_done >= spec.n_bars else V.TRACK_END
        if banned in v.ids:
            m[v.ids[banned]] = False
        return m
    return np.zeros(v.size, bool)


def chord_track_allowed(s: TrackState, v: VocabTable) -> np.ndarray:
    """The grammar of the chord track (``TrackSpec.chord_track``): ``INST=CHORDS DENSITY=0``, then bars of
    a chord at the bar's start and changes on later beats (``TIME_DELTA`` to a beat, then a ``CHORD``)."""
    m = np.zeros(v.size + 1, bool)
    if s.phase == EXPECT_INST:
        m[v.ids.get(V.chord_track_inst(), -1)] = True
    elif s.phase == EXPECT_DENSITY:
        m[v.ids.get(V.density(0), -1)] = True
    elif s.phase == EXPECT_BAR:
        m[v.ids.get(V.BAR_START if s.bars_done < s.spec.n_bars else V.TRACK_END, -1)] = True
    elif s.phase == IN_BAR:
        if s.words_in_bar % 2 == 0:  # the bar's head, or after a TIME_DELTA: a chord
            m[: v.size] |= v.cached("chords", lambda: [i for w, i in v.ids.items() if V.parse_word(w).kind == V.CHORD])
        else:  # after a chord: a change on a later beat, or the bar's end
            beat = V.beat_steps(s.spec.time_signature, s.grid)
            to_beats = [b - s.t for b in range(s.t + beat - s.t % beat, s.bar_len, beat)]
            m[v.time_delta[[d for d in to_beats if d < len(v.time_delta)]]] = True
            m[v.ids.get(s.spec.end_word, -1)] = True
    return m[: v.size]
