"""Bar-fill text (mask/resolve round trip) and constrained infilling that leaves every other bar alone."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synth import random_score
from tiny import untrained_model

from mmmgen.config import CodecConfig
from mmmgen.generate import grammar as C
from mmmgen.generate.sampling import GenerationError, Sampling
from mmmgen.generate.song import Generator
from mmmgen.text import vocab as V
from mmmgen.text.decode import text_to_piece
from mmmgen.text.encode import score_to_texts
from mmmgen.text.fill import (
    mask_bars,
    masked_bars,
    random_fill,
    resolve_fills,
    sounding_at_end,
    split_words,
)


def piece_text(seed: int, bars: int = 4) -> str:
    return score_to_texts(random_score(seed, n_bars=bars), CodecConfig(bars=bars))[0]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.randoms(use_true_random=False))
def test_mask_then_resolve_is_the_identity(seed, rng):
    text = piece_text(seed)
    masked = random_fill(text, rng)
    assert V.FILL_IN in masked and masked.count(V.FILL_IN) == masked.count(V.FILL_START)
    assert resolve_fills(masked) == text
    assert text_to_piece(masked, strict=True).tracks == text_to_piece(text, strict=True).tracks


def test_mask_layout_follows_mmm():
    text = piece_text(1, bars=3)
    masked = mask_bars(text, {0: [1, 2]})
    words = masked.split()
    assert words.count(V.FILL_IN) == 2 and masked_bars(masked) == [(0, 1), (0, 2)]
    assert words[words.index(V.FILL_START) - 1] == V.TRACK_END  # fills come after the piece
    assert mask_bars(text, {0: [1]}, with_fills=False).split()[-1] == V.TRACK_END
    with pytest.raises(ValueError, match="cannot mask bar 9"):
        mask_bars(text, {0: [8]})


def test_sounding_at_end():
    assert sounding_at_end("NOTE_HOLD=60 NOTE_ON=64 TIME_DELTA=4 NOTE_OFF=60 NOTE_ON=67".split()) == {64, 67}


def test_fill_state_allows_holds_of_the_bar_before_and_ends_with_fill_end():
    vocab = {w: i for i, w in enumerate([*V.SPECIAL_TOKENS, *V.all_words()])}
    table = C.VocabTable.from_vocab(vocab)
    words = {i: w for w, i in vocab.items()}
    s = C.TrackState.for_fill(C.TrackSpec(), carried={62})
    allowed = {words[i] for i in np.flatnonzero(C.allowed(s, table))}
    assert {w for w in allowed if w.startswith(V.NOTE_HOLD)} == {"NOTE_HOLD=62"}
    assert V.FILL_END in allowed and V.BAR_END not in allowed  # an empty fill is a silent bar
    s.step(V.FILL_END)
    assert s.phase == C.DONE


@pytest.fixture(scope="module")
def generator():
    return Generator(*untrained_model())


@pytest.mark.parametrize("seed", range(5))
def test_infill_changes_only_the_chosen_bars(generator, seed):
    song = generator.start("POP", n_bars=4, sampling=Sampling(seed=seed))
    song = generator.add_track(song, sampling=Sampling(seed=seed + 10))
    rng = random.Random(seed)
    track = rng.randrange(2)
    first = rng.randrange(4)
    bars = list(range(first, rng.randint(first, 3) + 1))
    new = generator.infill(song, track, bars, Sampling(seed=seed))
    before, after = split_words(song.text), split_words(new.text)
    for k, (t0, t1) in enumerate(zip(before.tracks, after.tracks, strict=True)):
        assert t0.head == t1.head
        for b, (bar0, bar1) in enumerate(zip(t0.bars, t1.bars, strict=True)):
            if not (k == track and b in bars):
                assert bar0 == bar1  # every other bar keeps its words
    piece = text_to_piece(new.text, strict=True)
    assert all(t.n_bars == 4 for t in piece.tracks)


def test_infill_whole_track_and_errors(generator):
    song = generator.start("ROCK", n_bars=2, sampling=Sampling(seed=3))
    again = generator.infill(song, 0, None, Sampling(seed=4))
    assert text_to_piece(again.text, strict=True).tracks[0].n_bars == 2
    assert generator.infill(song, 0, [1], Sampling(seed=9)) == generator.infill(song, 0, [1], Sampling(seed=9))
    with pytest.raises(GenerationError, match=r"track must be 1\.\.1"):
        generator.infill(song, 1, [0])
    with pytest.raises(GenerationError, match=r"bars must be within 1\.\.2"):
        generator.infill(song, 0, [2])
