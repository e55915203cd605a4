"""Each grammar rule alone, then all together: random walks through the allowed words always give valid tracks."""

from __future__ import annotations

import numpy as np
import pytest

from mmmgen.generate import grammar as C
from mmmgen.text import vocab as V
from mmmgen.text.decode import text_to_piece
from mmmgen.text.vocab import bar_steps

VOCAB = {w: i for i, w in enumerate([*V.SPECIAL_TOKENS, *V.all_words(genres=["POP"])])}
TABLE = C.VocabTable.from_vocab(VOCAB)
WORDS = {i: w for w, i in VOCAB.items()}


def allowed_words(mask: np.ndarray) -> set[str]:
    return {WORDS[i] for i in np.flatnonzero(mask)}


def state(*words: str, **spec) -> C.TrackState:
    s = C.TrackState(C.TrackSpec(**spec))
    for w in words:
        s.step(w)
    return s


def kinds(words: set[str]) -> set[str]:
    return {V.parse_word(w).kind for w in words}


def test_structure_orders_the_words():
    assert kinds(allowed_words(C.structure_rule(state(), TABLE))) == {V.INST}
    assert kinds(allowed_words(C.structure_rule(state("INST=0"), TABLE))) == {V.DENSITY}
    assert allowed_words(C.structure_rule(state("INST=0", "DENSITY=1"), TABLE)) == {V.BAR_START, V.TRACK_END}
    inside = kinds(allowed_words(C.structure_rule(state("INST=0", "DENSITY=1", "BAR_START"), TABLE)))
    assert inside == {V.NOTE_ON, V.NOTE_OFF, V.NOTE_HOLD, V.TIME_DELTA, V.BAR_END}  # no PIECE_END, TRACK_START, ...


def test_instrument_rule_forces_or_excludes():
    only = allowed_words(C.instrument_rule(state(instruments=[(40, False), (0, True)]), TABLE))
    assert {w for w in only if w.startswith(V.INST)} == {"INST=40", "INST=DRUMS"}
    assert "NOTE_ON=60" in only  # other families are left to other rules
    assert allowed_words(C.instrument_rule(state(), TABLE)) == set(VOCAB)


def test_density_rule_forces_a_level():
    m = C.density_rule(state("INST=0", density=3), TABLE)
    assert {w for w in allowed_words(m) if w.startswith(V.DENSITY)} == {"DENSITY=3"}


def test_bar_count_rule():
    s = state("INST=0", "DENSITY=0", n_bars=2)
    assert V.TRACK_END not in allowed_words(C.bar_count_rule(s, TABLE))
    for w in ["BAR_START", "NOTE_ON=60", "TIME_DELTA=1", "BAR_END", "BAR_START", "BAR_END"]:
        s.step(w)
    assert V.BAR_START not in allowed_words(C.bar_count_rule(s, TABLE))
    assert V.TRACK_END in allowed_words(C.bar_count_rule(s, TABLE))


def test_note_off_only_for_sounding_pitches_that_lasted():
    s = state("INST=0", "DENSITY=0", "BAR_START", "NOTE_ON=60", "NOTE_ON=64")
    assert not {w for w in allowed_words(C.note_off_rule(s, TABLE)) if w.startswith(V.NOTE_OFF)}  # zero length
    s.step("TIME_DELTA=1")
    assert {w for w in allowed_words(C.note_off_rule(s, TABLE)) if w.startswith(V.NOTE_OFF)} == {"NOTE_OFF=60", "NOTE_OFF=64"}


def test_note_on_only_for_silent_pitches_with_time_left():
    s = state("INST=0", "DENSITY=0", "BAR_START", "NOTE_ON=60")
    ons = {w for w in allowed_words(C.note_on_rule(s, TABLE)) if w.startswith(V.NOTE_ON)}
    assert "NOTE_ON=60" not in ons and len(ons) == 127
    s.step("TIME_DELTA=16")  # the 4/4 bar is full
    assert not {w for w in allowed_words(C.note_on_rule(s, TABLE)) if w.startswith(V.NOTE_ON)}


def test_hold_only_at_the_head_for_carried_pitches():
    s = state("INST=0", "DENSITY=0", "BAR_START", "NOTE_ON=60", "TIME_DELTA=16", "BAR_END", "BAR_START")
    assert {w for w in allowed_words(C.hold_rule(s, TABLE)) if w.startswith(V.NOTE_HOLD)} == {"NOTE_HOLD=60"}
    s.step("TIME_DELTA=1")
    assert not {w for w in allowed_words(C.hold_rule(s, TABLE)) if w.startswith(V.NOTE_HOLD)}


@pytest.mark.parametrize(("meter", "longest"), [((4, 4), "TIME_DELTA=16"), ((3, 4), "TIME_DELTA=12"), ((6, 8), "TIME_DELTA=12")])
def test_time_stays_inside_the_bar(meter, longest):
    s = state("INST=0", "DENSITY=0", "BAR_START", "NOTE_ON=60", time_signature=meter, n_bars=4)
    deltas = {w for w in allowed_words(C.time_rule(s, TABLE)) if w.startswith(V.TIME_DELTA)}
    steps = {V.parse_time_delta(V.parse_word(w).value, 12) for w in deltas}
    assert max(steps) == bar_steps(meter, 12) and longest in deltas


def test_an_empty_track_cannot_end():
    s = state("INST=0", "DENSITY=0", "BAR_START", n_bars=1)
    assert V.BAR_END not in allowed_words(C.non_empty_rule(s, TABLE))
    deltas = {w for w in allowed_words(C.time_rule(s, TABLE)) if w.startswith(V.TIME_DELTA)}
    assert "TIME_DELTA=16" not in deltas  # leaves a step for a note
    s.step("NOTE_ON=50")
    assert V.BAR_END in allowed_words(C.non_empty_rule(s, TABLE))


def test_budget_closes_a_runaway_bar():
    s = state("INST=0", "DENSITY=0", "BAR_START", "NOTE_ON=60", "TIME_DELTA=1", max_words_per_bar=2)
    assert kinds(allowed_words(C.budget_rule(s, TABLE))) == {V.NOTE_OFF, V.BAR_END}


@pytest.mark.parametrize("seed", range(40))
def test_random_walks_through_allowed_words_are_valid_tracks(seed):
    rng = np.random.default_rng(seed)
    meter = [(4, 4), (3, 4), (6, 8), (5, 4), (2, 2), (7, 8)][seed % 6]
    n_bars = int(rng.integers(1, 5))
    s = C.TrackState(C.TrackSpec(n_bars=n_bars, time_signature=meter, instruments=[(seed, False)], max_words_per_bar=60))
    words = []
    while s.phase != C.DONE:
        options = np.flatnonzero(C.allowed(s, TABLE))
        assert len(options), f"dead end after {words}"
        word = WORDS[int(rng.choice(options))]
        s.step(word)
        words.append(word)
        assert len(words) < 5000
    text = f"PIECE_START {V.time_signature(*meter)} GENRE=POP TRACK_START " + " ".join(words)
    piece = text_to_piece(text, strict=True)
    (track,) = piece.tracks
    assert track.n_bars == n_bars and track.notes and track.program == seed


@pytest.mark.parametrize("seed", range(60))
def test_the_one_pass_mask_is_the_conjunction_of_the_rules(seed):
    """``allowed`` (built in one pass) equals the rules and-ed one by one, in every state of random walks:
    forced or excluded instruments (some missing from the vocabulary), forced densities (some missing),
    runaway bars past the word budget, empty last bars, fills with held notes."""
    rng = np.random.default_rng(1000 + seed)
    meter = [(4, 4), (3, 4), (6, 8), (5, 4), (2, 2), (7, 8)][seed % 6]
    instruments = [None, [(seed, False)], [(1, False), (0, True)], [(seed, True)], []][seed % 5]  # (seed, True): no such word
    density = [None, 2, 50][seed % 3]  # DENSITY=50 is not a word
    spec = C.TrackSpec(n_bars=int(rng.integers(1, 4)), time_signature=meter, instruments=instruments, density=density,
                       max_words_per_bar=int(rng.integers(2, 30)))
    if seed % 4 == 3:
        s = C.TrackState.for_fill(C.TrackSpec(time_signature=meter, max_words_per_bar=spec.max_words_per_bar),
                                  {int(p) for p in rng.integers(30, 90, 3)})
    else:
        s = C.TrackState(spec)
    for _ in range(400):
        fast = C.allowed(s, TABLE)
        assert np.array_equal(fast, C.conjunction(s, TABLE)), (s, allowed_words(fast ^ C.conjunction(s, TABLE)))
        options = np.flatnonzero(fast)
        if s.phase == C.DONE or not len(options):
            break
        word = WORDS[int(rng.choice(options))]
        if rng.random() < 0.3 and any(w.startswith(V.TIME_DELTA) for w in allowed_words(fast)):  # reach full bars sooner
            word = max((w for w in allowed_words(fast) if w.startswith(V.TIME_DELTA)), key=lambda w: len(w))
        s.step(word)


def test_the_one_pass_mask_with_words_missing_from_the_vocabulary():
    """Pitches, holds and time steps without a word (id -1) are left out, as the rules do."""
    vocab = {w: i for i, w in enumerate(w for w in VOCAB if w not in {"NOTE_ON=61", "NOTE_OFF=60", "NOTE_HOLD=60", "TIME_DELTA=1"})}
    table = C.VocabTable.from_vocab(vocab)
    s = state("INST=0", "DENSITY=0", "BAR_START", "NOTE_ON=60", "TIME_DELTA=16", "BAR_END", "BAR_START", n_bars=3)
    for word in ["", "NOTE_ON=62", "TIME_DELTA=2"]:
        if word:
            s.step(word)
        assert np.array_equal(C.allowed(s, table), C.conjunction(s, table))
    assert C.allowed(s, table).sum() > 0


def test_the_one_pass_mask_in_a_runaway_empty_last_bar():
    """Past the budget, an empty track's last bar may still start a note (and nothing else but closing)."""
    s = state("INST=0", "DENSITY=0", "BAR_START", "TIME_DELTA=1", "TIME_DELTA=1", n_bars=1, max_words_per_bar=2)
    fast = C.allowed(s, TABLE)
    assert np.array_equal(fast, C.conjunction(s, TABLE))
    assert kinds(allowed_words(fast)) == {V.NOTE_ON}  # BAR_END needs a note first; no time, no holds
