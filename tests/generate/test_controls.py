"""Musical controls: each rule alone on chosen states, then random walks through the allowed words
(alone and combined) whose decoded notes always obey; impossible requests fail before sampling;
the key estimate on synthetic scales and real music."""

from __future__ import annotations

import numpy as np
import pytest
from tiny import random_walk, untrained_model

from mmmgen.generate import controls as K
from mmmgen.generate import grammar as C
from mmmgen.generate.controls import ControlError, Controls, violations
from mmmgen.generate.sampling import Sampling
from mmmgen.text import vocab as V
from mmmgen.text.decode import text_to_piece

VOCAB = {w: i for i, w in enumerate([*V.SPECIAL_TOKENS, *V.all_words(genres=["POP"])])}
TABLE = C.VocabTable.from_vocab(VOCAB)
WORDS = {i: w for w, i in VOCAB.items()}
ONE_EACH = {
    "scale": Controls(scale="D:dorian"),
    "range": Controls(pitch_range=(55, 60)),
    "polyphony": Controls(max_polyphony=2),
    "min_note": Controls(min_note=0.5),
    "max_note": Controls(max_note=0.75),
}
COMBINED = Controls(scale="E:minor-pentatonic", pitch_range=(40, 70), max_polyphony=3, min_note=0.25, max_note=1.5)


def allowed_words(mask: np.ndarray) -> set[str]:
    return {WORDS[i] for i in np.flatnonzero(mask)}


def state(*words: str, controls=None, **spec) -> C.TrackState:
    s = C.TrackState(C.TrackSpec(controls=controls, **spec))
    for w in words:
        s.step(w)
    return s


def notes_of(words: list[str], meter=(4, 4)) -> list[tuple[int, int, int]]:
    text = " ".join([V.PIECE_START, V.time_signature(*meter), V.TRACK_START, *words])
    return [(p, a, e) for p, a, e, _ in text_to_piece(text, strict=True).tracks[0].notes]


def walk(s: C.TrackState, rng) -> list[str]:
    """Random words among the allowed ones until the track is done (uniform: the worst model)."""
    return random_walk(s, TABLE, WORDS, rng, time_share=0.2)


# --- parsing and checks before sampling -------------------------------------------------------
def test_scales_and_modes():
    assert K.parse_scale("C:major") == {0, 2, 4, 5, 7, 9, 11}
    assert K.parse_scale("A:minor") == K.parse_scale("C:major") == K.parse_scale("D:dorian") == K.parse_scale("g mixolydian")
    assert K.parse_scale("F#:lydian") == {6, 8, 10, 0, 1, 3, 5}
    assert K.parse_scale("A:minor-pentatonic") == K.parse_scale("C:major-pentatonic") == {9, 0, 2, 4, 7}
    assert K.parse_scale("Bb:locrian") == {10, 11, 1, 3, 4, 6, 8}
    for bad in ("H:major", "C:blues", "major", ""):
        with pytest.raises(ControlError):
            K.parse_scale(bad)
    assert K.parse_pitch_range("48-72") == (48, 72)
    with pytest.raises(ControlError):
        K.parse_pitch_range("48")


def test_impossible_requests_fail_before_sampling():
    with pytest.raises(ControlError, match="no pitch in common"):
        Controls(scale="C:major", pitch_range=(61, 61))
    with pytest.raises(ControlError, match="longer than the longest"):
        Controls(min_note=2, max_note=1)
    for bad in ({"max_polyphony": 0}, {"min_note": 0}, {"pitch_range": (80, 70)}, {"pitch_range": (0, 128)}):
        with pytest.raises(ControlError):
            Controls(**bad)
    with pytest.raises(ControlError, match="longer than a bar of 3/4"):
        Controls(min_note=4).check((3, 4), 12)
    with pytest.raises(ControlError, match="longer than the longest"):  # both round to whole grid steps
        Controls(min_note=0.09, max_note=0.05).check((4, 4), 12)
    model, tok = untrained_model()
    from mmmgen.generate.song import Generator, Song

    g = Generator(model, tok)
    with pytest.raises(ControlError):
        g.add_track(Song((3, 4), "POP", 2), controls=Controls(min_note=4))


# --- each rule alone on chosen states ---------------------------------------------------------
def test_scale_rule_bans_new_notes_outside_the_scale_only():
    c = Controls(scale="C:major")
    s = state("INST=0", "DENSITY=1", "BAR_START", controls=c)
    words = allowed_words(K.scale_rule(s, TABLE))
    assert V.note_on(60) in words and V.note_on(61) not in words and V.note_off(61) in words and V.note_hold(61) in words
    drums = state("INST=DRUMS", "DENSITY=1", "BAR_START", controls=c)
    assert K.scale_rule(drums, TABLE).all()  # drums are exempt
    assert K.scale_rule(state("INST=0", "DENSITY=1", "BAR_START"), TABLE).all()  # no controls: free


def test_range_rule():
    s = state("INST=0", "DENSITY=1", "BAR_START", controls=Controls(pitch_range=(50, 52)))
    ons = {w for w in allowed_words(K.range_rule(s, TABLE)) if w.startswith(V.NOTE_ON)}
    assert ons == {V.note_on(50), V.note_on(51), V.note_on(52)}


def test_polyphony_rule():
    c = Controls(max_polyphony=2)
    s = state("INST=0", "DENSITY=1", "BAR_START", "NOTE_ON=60", controls=c)
    assert V.note_on(64) in allowed_words(K.polyphony_rule(s, TABLE))
    s.step("NOTE_ON=64")
    words = allowed_words(K.polyphony_rule(s, TABLE))
    assert not any(w.startswith((V.NOTE_ON, V.NOTE_HOLD)) for w in words) and V.note_off(60) in words


def test_min_note_rule():
    c = Controls(min_note=1)  # 12 steps
    s = state("INST=0", "DENSITY=1", "BAR_START", "NOTE_ON=60", "TIME_DELTA=1", controls=c, n_bars=2)
    words = allowed_words(K.min_note_rule(s, TABLE))
    assert V.note_off(60) not in words and V.time_delta(9, 12) in words and V.time_delta(3, 12) not in words  # 3 steps in: 9 to go
    s.step("TIME_DELTA=3")  # 12 steps: may end
    assert V.note_off(60) in allowed_words(K.min_note_rule(s, TABLE))
    late = state("INST=0", "DENSITY=1", "BAR_START", "TIME_DELTA=16", "BAR_END", "BAR_START", "TIME_DELTA=14", controls=c, n_bars=2)
    assert not any(w.startswith(V.NOTE_ON) for w in allowed_words(K.min_note_rule(late, TABLE)))  # 6 steps left: no room
    carried = state("INST=0", "DENSITY=1", "BAR_START", "TIME_DELTA=15", "NOTE_ON=60", "BAR_END", "BAR_START", controls=c, n_bars=2)
    assert allowed_words(K.min_note_rule(carried, TABLE)) == {V.note_hold(60)}  # too young to end at the bar line


def test_max_note_rule():
    c = Controls(max_note=0.5)  # 6 steps
    s = state("INST=0", "DENSITY=1", "BAR_START", "NOTE_ON=60", "TIME_DELTA=1", controls=c, n_bars=2)
    words = allowed_words(K.max_note_rule(s, TABLE))
    assert V.time_delta(3, 12) in words and V.time_delta(4, 12) not in words and V.BAR_END not in words
    held = state("INST=0", "DENSITY=1", "BAR_START", "TIME_DELTA=14", "NOTE_ON=60", "TIME_DELTA=2", "BAR_END", "BAR_START", controls=c, n_bars=2)
    assert V.note_hold(60) not in allowed_words(K.max_note_rule(held, TABLE))  # 6 steps old at the bar line


# --- random walks: every decoded note obeys, alone and combined -------------------------------
@pytest.mark.parametrize("name", [*ONE_EACH, "combined"])
@pytest.mark.parametrize("seed", range(6))
def test_random_walks_obey(name, seed):
    c = ONE_EACH.get(name, COMBINED)
    rng = np.random.default_rng(seed)
    meter = [(4, 4), (3, 4), (6, 8)][seed % 3]
    s = state(controls=c, n_bars=int(rng.integers(1, 4)), time_signature=meter, instruments=[(0, False)], max_words_per_bar=60)
    words = walk(s, rng)
    notes = notes_of(words, meter)
    assert notes and violations(notes, c, 12) == []


def test_random_fills_obey_in_their_bar():
    """A fill obeys in its own bar, next to carried notes it may hold and a next bar that holds notes."""
    c = COMBINED
    for seed in range(10):
        rng = np.random.default_rng(50 + seed)
        carried = {int(p) for p in rng.choice(np.flatnonzero(c.pitches), 2, replace=False)}
        ages = {p: int(rng.integers(1, 12)) for p in carried}
        s = C.TrackState.for_fill(C.TrackSpec(controls=c), carried, 12, ages=ages, after={next(iter(carried))})
        words = walk(s, rng)[:-1]
        bar = [(p, a, e) for p, a, e in notes_of(["INST=0", "DENSITY=1", "BAR_START", *words, "BAR_END", "TRACK_END"])]
        new = [n for n in bar if not (n[0] in carried and n[1] == 0 and V.note_hold(n[0]) in words)]
        held = [(p, -ages[p], e) for p, a, e in bar if p in carried and a == 0 and V.note_hold(p) in words]
        assert violations(new, Controls(scale=c.scale, pitch_range=c.pitch_range, min_note=c.min_note, max_note=c.max_note), 12) == []
        assert violations(held, Controls(max_note=c.max_note), 12) == []
        assert all(e < 48 for p, a, e in bar if p in s.after and (p, a, e) in new)  # closed before the next bar holds it


def test_drum_tracks_are_free():
    rng = np.random.default_rng(3)
    s = state(controls=Controls(scale="C:major", max_polyphony=1), n_bars=2, instruments=[(0, True)])
    notes = notes_of(walk(s, rng))
    assert s.is_drum and violations(notes, Controls(scale="C:major", max_polyphony=1), 12)  # a random kit breaks them freely


# --- through the Generator --------------------------------------------------------------------
@pytest.fixture(scope="module")
def generator():
    from mmmgen.generate.song import Generator

    model, tok = untrained_model()
    return Generator(model, tok)


def test_generator_operations_obey(generator):
    c = COMBINED
    song = generator.start("POP", n_bars=2, instrument=(0, False), sampling=Sampling(seed=1), controls=c)
    song = generator.add_track(song, instrument=(40, False), sampling=Sampling(seed=2), controls=c)
    song = generator.regenerate_last(song, sampling=Sampling(seed=3), controls=c)
    for track in text_to_piece(song.text, strict=True).tracks:
        assert violations([(p, a, e) for p, a, e, _ in track.notes], c, 12) == []
    new_notes = 0
    for seed in range(4):
        filled = generator.infill(song, 0, [1], sampling=Sampling(seed=4 + seed), controls=c)
        notes = [(p, a, e) for p, a, e, _ in text_to_piece(filled.text, strict=True).tracks[0].notes if a >= 48]  # in bar 2
        assert violations(notes, c, 12) == []
        new_notes += len(notes)
    assert new_notes


def test_no_controls_is_todays_behaviour(generator):
    plain = generator.start("POP", n_bars=2, sampling=Sampling(seed=7))
    assert generator.start("POP", n_bars=2, sampling=Sampling(seed=7), controls=None) == plain
    assert generator.start("POP", n_bars=2, sampling=Sampling(seed=7), controls=Controls()) == plain
    assert generator.infill(plain, 0, [1], Sampling(seed=8)) == generator.infill(plain, 0, [1], Sampling(seed=8), controls=Controls())


# --- the key of some music --------------------------------------------------------------------
def test_key_of_synthetic_scales():
    for tonic in range(12):
        for mode, steps in (("major", (0, 2, 4, 5, 7, 9, 11)), ("minor", (0, 2, 3, 5, 7, 8, 10))):
            w = np.zeros(12)
            for i, step in enumerate(steps):
                w[(tonic + step) % 12] += 1 + (2 if i in (0, 2, 4) else 0)  # the tonic triad sounds most
            assert K.estimate_key(w) == f"{K.TONICS[tonic]}:{mode}"
    with pytest.raises(ControlError):
        K.estimate_key(np.ones(12))
    text = "PIECE_START TIME_SIGNATURE=4_4 TRACK_START INST=0 DENSITY=1 BAR_START " + " ".join(
        f"NOTE_ON={p} TIME_DELTA=4 NOTE_OFF={p}" for p in (57, 60, 64, 57, 59, 60, 62, 64, 65, 64, 62, 60, 59, 57, 64, 57)
    ) + " BAR_END TRACK_END"
    assert K.key_of_text(text) == "A:minor"


def test_key_of_real_music():
    """Bach chorales from music21's corpus: the estimate names the key music21 reads in the score."""
    corpus = pytest.importorskip("music21.corpus")
    for name in ("bach/bwv66.6", "bach/bwv269", "bach/bwv347", "bach/bwv153.1"):
        score = corpus.parse(name)
        w = np.zeros(12)
        for n in score.flatten().notes:
            for p in n.pitches:
                w[p.pitchClass] += float(n.quarterLength)
        expected = score.analyze("key.krumhanslschmuckler")
        tonic = K.TONICS[expected.tonic.pitchClass]
        assert K.estimate_key(w) == f"{tonic}:{expected.mode}", name


def test_takes_obey_too(generator):
    c = Controls(scale="C:major", pitch_range=(48, 72), max_polyphony=2, max_note=1)
    takes = generator.start("POP", n_bars=2, instrument=(0, False), sampling=Sampling(seed=11), takes=3, controls=c)
    filled = generator.infill(takes[0].song, 0, [1], Sampling(seed=12), takes=2, controls=c)
    for take in [*takes, *filled]:
        track = text_to_piece(take.song.text, strict=True).tracks[0]
        assert violations([(p, a, e) for p, a, e, _ in track.notes], c, 12) == []
    again = generator.start("POP", n_bars=2, instrument=(0, False), sampling=Sampling(seed=takes[1].seed), controls=c)
    assert again == takes[1].song  # a take is reproduced from its seed, controls included
