"""The chord track under a scale control (``controls.chord_scale_rule``): chords of the scale, the first on the tonic."""

from __future__ import annotations

import numpy as np
from tiny import check_valid, untrained_model, word_tokenizer

from mmmgen.generate import controls as K
from mmmgen.generate import grammar as C
from mmmgen.generate.controls import Controls, parse_scale, scale_tonic
from mmmgen.generate.sampling import Sampling
from mmmgen.generate.song import Generator, generate_song
from mmmgen.text import vocab as V
from mmmgen.text.chords import parse_chord

WORDS_LIST = [*V.SPECIAL_TOKENS, *V.all_words(genres=["POP"], chords=True)]
VOCAB = {w: i for i, w in enumerate(WORDS_LIST)}
TABLE = C.VocabTable.from_vocab(VOCAB)
WORDS = {i: w for w, i in VOCAB.items()}


def chords_allowed(mask: np.ndarray) -> set[str]:
    return {V.parse_word(WORDS[i]).value for i in np.flatnonzero(mask) if V.parse_word(WORDS[i]).kind == V.CHORD}


def chord_state(*words: str, scale: str | None = "A:minor", first_bar: int = 0) -> C.TrackState:
    controls = Controls(scale=scale) if scale else None
    s = C.TrackState(C.TrackSpec(n_bars=2, chord_track=True, controls=controls, first_bar=first_bar))
    for w in [V.chord_track_inst(), V.density(0), V.BAR_START, *words]:
        s.step(w)
    return s


def test_the_songs_first_chord_is_a_chord_of_the_scale_on_its_tonic():
    first = chords_allowed(K.chord_scale_rule(chord_state(), TABLE))
    assert "A:min" in first and first
    for label in first - {"N"}:
        chord = parse_chord(label)
        assert chord.root == 9 and chord.pitch_classes <= parse_scale("A:minor")
    assert "A:maj" not in first and "C:maj" not in first


def test_later_chords_are_any_chord_of_the_scale():
    later = chords_allowed(K.chord_scale_rule(chord_state(V.chord("A:min"), V.time_delta(12, 12)), TABLE))
    assert {"C:maj", "F:maj", "G:maj", "D:min", "E:min", "A:min"} <= later
    assert not {"E:maj", "A:maj", "B:maj", "C:min"} & later  # G#, C#, D#, Eb: outside A minor
    window = chords_allowed(K.chord_scale_rule(chord_state(first_bar=8), TABLE))  # a later window's first bar
    assert "C:maj" in window and "E:maj" not in window


def test_the_last_bar_of_the_first_window_opens_on_the_tonic_too():
    end = chord_state(V.chord("C:maj"), V.BAR_END, V.BAR_START)  # bar 2 of 2
    assert end.last_bar and chords_allowed(K.chord_scale_rule(end, TABLE)) == chords_allowed(K.chord_scale_rule(chord_state(), TABLE))
    later = chord_state(V.chord("C:maj"), V.BAR_END, V.BAR_START, first_bar=8)  # the last bar of a later window: any chord of the scale
    assert "C:maj" in chords_allowed(K.chord_scale_rule(later, TABLE))


def test_no_scale_or_no_chord_track_leaves_every_word():
    assert K.chord_scale_rule(chord_state(scale=None), TABLE).all()
    notes = C.TrackState(C.TrackSpec(controls=Controls(scale="A:minor")))
    assert K.chord_scale_rule(notes, TABLE).all()


def test_the_grammar_applies_it_to_the_chord_track():
    s = chord_state()
    allowed = C.allowed(s, TABLE)
    assert np.flatnonzero(allowed).size and chords_allowed(allowed) == chords_allowed(C.chord_track_allowed(s, TABLE) & K.chord_scale_rule(s, TABLE))
    assert chords_allowed(C.allowed(chord_state(scale=None), TABLE)) > chords_allowed(allowed)


def test_scale_tonic():
    assert scale_tonic("F#:dorian") == (6, "dorian") and scale_tonic("Bb minor") == (10, "minor")


def test_a_model_that_knows_chords_writes_them_in_the_asked_scale():
    model, _ = untrained_model()
    model.resize_token_embeddings(len(WORDS_LIST))
    gen = Generator(model, word_tokenizer(WORDS_LIST))
    for seed in range(4):
        song = generate_song(gen, tracks=1, genre="POP", n_bars=4, sampling=Sampling(seed=seed), controls=Controls(scale="E:minor"))
        check_valid(song)
        assert song.chords and song.chords[0].chord.root == 4
        assert next(c for c in song.chords if c.start <= 12 < c.end).chord.root == 4  # the last bar (quarter 12 of 16) opens on it
        assert all(span.chord.pitch_classes <= parse_scale("E:minor") for span in song.chords)
