"""The chord rule alone (generate/harmony.py): chosen states, then random walks through the allowed
words whose decoded notes always follow the chords (strict and loose, bass lines, drums exempt)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from tiny import random_walk

from mmmgen.generate import grammar as C
from mmmgen.generate.controls import ControlError
from mmmgen.generate.harmony import (
    ChordRule,
    beat_steps,
    chord_tone_share,
    fit_progression,
    progression_key,
)
from mmmgen.text import vocab as V
from mmmgen.text.chords import parse_chord, parse_progression
from mmmgen.text.decode import text_to_piece

VOCAB = {w: i for i, w in enumerate([*V.SPECIAL_TOKENS, *V.all_words(genres=["POP"])])}
TABLE = C.VocabTable.from_vocab(VOCAB)
WORDS = {i: w for w, i in VOCAB.items()}
PROGRESSIONS = ["Am F C G", "C:2 Ab:2 Bb:2 C:2 | Fm7 Bb7 | Ebmaj7 | Abmaj7 Dm7b5 G7", "Dm7 G7 Cmaj7 C6 | F#dim7 | E7/G# | Am"]


def rule(text="Am F C G", mode="loose", meter=(4, 4), **kw) -> ChordRule:
    bar = Fraction(meter[0] * 4, meter[1])
    return ChordRule(tuple(fit_progression(parse_progression(text, bar), 4 * bar)), mode, time_signature=meter, **kw)


def state(*words, harmony=None, **spec) -> C.TrackState:
    s = C.TrackState(C.TrackSpec(harmony=harmony, **spec))
    for w in words:
        s.step(w)
    return s


def allowed_words(s) -> set[str]:
    return {WORDS[i] for i in np.flatnonzero(C.allowed(s, TABLE))}


def walk(s: C.TrackState, rng) -> list[str]:
    """Random allowed words until the track is done (uniform: the worst model)."""
    return random_walk(s, TABLE, WORDS, rng, time_share=0.3)


def notes_of(words, meter=(4, 4)):
    text = " ".join([V.PIECE_START, V.time_signature(*meter), V.TRACK_START, *words])
    return [(p, a, e) for p, a, e, _ in text_to_piece(text, strict=True).tracks[0].notes]


def test_strict_allows_only_chord_tones():
    s = state(V.inst(0), V.density(1), V.BAR_START, harmony=rule(mode="strict"))
    ons = {int(w.split("=")[1]) % 12 for w in allowed_words(s) if w.startswith(V.NOTE_ON)}
    assert ons == {9, 0, 4}  # A minor
    s.step(V.time_delta(3, 12))  # a sixteenth in: off the beat, still only chord tones
    assert {int(w.split("=")[1]) % 12 for w in allowed_words(s) if w.startswith(V.NOTE_ON)} == {9, 0, 4}


def test_loose_allows_scale_tones_between_beats_and_ends_them_by_the_beat():
    s = state(V.inst(0), V.density(1), V.BAR_START, harmony=rule())
    assert {int(w.split("=")[1]) % 12 for w in allowed_words(s) if w.startswith(V.NOTE_ON)} == {9, 0, 4}  # on the beat
    s.step(V.time_delta(3, 12))
    off_beat = {int(w.split("=")[1]) % 12 for w in allowed_words(s) if w.startswith(V.NOTE_ON)}
    assert off_beat == {0, 2, 4, 5, 7, 9, 11}  # A minor's scale (the key of Am F C G: C major / A minor)
    s.step(V.note_on(62))  # D: no tone of A minor, so it ends by the next beat (9 steps on)
    deltas = {w for w in allowed_words(s) if w.startswith(V.TIME_DELTA)}
    assert deltas == {V.time_delta(k, 12) for k in range(1, 10)}
    s.step(V.time_delta(9, 12))
    assert not any(w.startswith(V.TIME_DELTA) for w in allowed_words(s))  # on the beat: D must end first
    assert V.note_off(62) in allowed_words(s)


def test_a_note_ends_before_a_chord_change_it_does_not_belong_to():
    s = state(V.inst(0), V.density(1), V.BAR_START, V.note_on(57), harmony=rule("Am:2 F:2"))  # A: in Am and F
    s.step(V.note_on(64))  # E: in Am, not in F
    deltas = {w for w in allowed_words(s) if w.startswith(V.TIME_DELTA)}
    assert max(Fraction(w.split("=")[1]) for w in deltas) == 8  # half a bar: up to the change to F, not past it


def test_held_notes_must_belong_to_the_next_bars_chord():
    s = state(V.inst(0), V.density(1), V.BAR_START, V.note_on(60), V.note_on(64), V.BAR_END, V.BAR_START, harmony=rule("Am F"))
    holds = {w for w in allowed_words(s) if w.startswith(V.NOTE_HOLD)}
    assert holds == {V.note_hold(60)}  # C is in F major, E is not


def test_a_bass_line_lands_on_the_chords_bass_at_each_change():
    s = state(V.inst(33), V.density(1), V.BAR_START, harmony=rule("C/E G"))
    assert {int(w.split("=")[1]) % 12 for w in allowed_words(s) if w.startswith(V.NOTE_ON)} == {4}  # E, the bass
    assert not any(w.startswith(V.TIME_DELTA) for w in allowed_words(s))  # time waits for the bass note
    s.step(V.note_on(40))
    assert V.time_delta(12, 12) in allowed_words(s)


def test_drums_and_no_chord_and_off_are_free():
    free = allowed_words(state(V.inst(0), V.density(1), V.BAR_START))
    assert allowed_words(state(V.inst(0, True), V.density(1), V.BAR_START, harmony=rule(mode="strict"))) == free
    assert allowed_words(state(V.inst(0), V.density(1), V.BAR_START, harmony=rule("N", mode="strict"))) == free
    assert allowed_words(state(V.inst(0), V.density(1), V.BAR_START, harmony=rule(mode="off"))) == free


def test_bad_rule_names_fail_clearly():
    with pytest.raises(ControlError, match="strict, loose, off"):
        rule(mode="tight")
    with pytest.raises(ControlError, match="bad scale"):
        rule(scale="C:bluesy")


@pytest.mark.parametrize("mode", ["strict", "loose"])
@pytest.mark.parametrize("progression", PROGRESSIONS)
@pytest.mark.parametrize("program", [0, 33])
def test_random_walks_follow_the_chords(mode, progression, program):
    """Whatever the model picks: every note sounding on a beat is a tone of that beat's chord,
    strict onsets are chord tones, and a bass line sounds the chord's bass at every change."""
    rng = np.random.default_rng(len(progression) + program)
    r = rule(progression, mode)
    for _ in range(3):
        words = walk(state(V.inst(program), V.density(1), harmony=r, n_bars=4), rng)
        notes = notes_of(words)
        good, total = chord_tone_share(notes, r.chords, 12)
        assert good == total and total > 0
        for p, a, _ in notes:
            chord, _ = r.chord_at(a)
            if mode == "strict":
                assert p % 12 in chord.pitch_classes
            else:
                assert p % 12 in chord.pitch_classes | set(np.flatnonzero(r.scale_classes))
        if program == 33:
            for start in r._starts:
                sounding = {p % 12 for p, a, e in notes if a <= start < e}
                assert r.chord_at(start)[0].bass_class in sounding


def test_progression_repeats_when_shorter_and_is_cut_when_longer():
    spans = fit_progression(parse_progression("Am F", 4), 16)
    assert [s.chord.label for s in spans] == ["A:min", "F:maj", "A:min", "F:maj"] and spans[-1].end == 16
    assert [s.chord.label for s in fit_progression(parse_progression("C D E F G", 4), 6)] == ["C:maj", "D:maj"]
    assert progression_key(parse_progression("C F G C", 4)) == "C:major"


def test_beats_of_meters():
    assert [beat_steps(m, 12) for m in [(4, 4), (3, 4), (6, 8), (2, 2), (7, 8)]] == [12, 12, 18, 24, 6]
    assert parse_chord("C/E").bass_class == 4


def test_each_track_lands_on_the_tone_the_others_leave_out():
    alone = state(V.inst(0), V.density(1), V.BAR_START, harmony=rule("Am"))
    assert not any(w.startswith(V.TIME_DELTA) for w in allowed_words(alone))  # the root must sound first
    alone.step(V.note_on(64))  # E: a chord tone, but not the root
    assert not any(w.startswith(V.TIME_DELTA) for w in allowed_words(alone))
    alone.step(V.note_on(57))
    assert V.time_delta(12, 12) in allowed_words(alone)
    with_root = rule("Am", covered=((0, frozenset({9})), (12, frozenset({9, 0}))))  # another track has A, then A and C
    s = state(V.inst(0), V.density(1), V.BAR_START, V.note_on(69), harmony=with_root)
    assert not any(w.startswith(V.TIME_DELTA) for w in allowed_words(s))  # the third (C) is what is missing
    s.step(V.note_on(72))
    assert V.time_delta(12, 12) in allowed_words(s) and V.time_delta(13, 12) not in allowed_words(s)  # beat 2: the others sound A and C there, so the fifth (E) must
    free = rule("Am", land=False)
    assert V.time_delta(12, 12) in allowed_words(state(V.inst(0), V.density(1), V.BAR_START, harmony=free))


def test_new_notes_stay_within_an_octave_of_the_last():
    s = state(V.inst(0), V.density(1), V.BAR_START, V.note_on(57), V.time_delta(3, 12), harmony=rule("Am"))
    ons = {int(w.split("=")[1]) for w in allowed_words(s) if w.startswith(V.NOTE_ON)}
    assert min(ons) >= 45 and max(ons) <= 69 and {48, 64, 69} <= ons


def test_a_note_below_the_other_tracks_is_the_chords_bass():
    r = rule("C/E", floor=((0, 60), (12, 55)))  # the other tracks' lowest notes: C4 on beat 1, G3 on beat 2
    s = state(V.inst(0), V.density(1), V.BAR_START, harmony=r)
    below = {int(w.split("=")[1]) for w in allowed_words(s) if w.startswith(V.NOTE_ON) and int(w.split("=")[1]) < 60}
    assert below and {p % 12 for p in below} == {4}  # only E (the bass of C/E) below C4
    assert V.note_on(64) in allowed_words(s) and V.note_on(67) in allowed_words(s)  # above: any chord tone
