"""Songs longer than the model's window (``window.py``), with an untrained tiny model: always valid, nothing lost."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny import untrained_model
from transformers import GPT2Config, GPT2LMHeadModel

from mmmgen.generate import window as W
from mmmgen.generate.sampling import GenerationError, Sampling
from mmmgen.generate.song import MAX_BARS, Generator, Song, generate_song
from mmmgen.text.decode import text_to_piece
from mmmgen.text.fill import split_words

METERS = [(4, 4), (3, 4), (6, 8), (5, 4), (7, 8), (2, 2)]


@pytest.fixture(scope="module")
def untrained():
    return untrained_model()


def bars_of(song: Song):
    return [t.bars for t in split_words(song.text).tracks]


def check_valid(song: Song) -> None:
    piece = text_to_piece(song.text, strict=True)
    assert piece.time_signature == song.time_signature and len(piece.tracks) == len(song.tracks)
    assert all(t.n_bars == song.n_bars and t.notes for t in piece.tracks)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), meter=st.sampled_from(METERS), first=st.integers(1, 6), more=st.integers(1, 7))
def test_extend_keeps_every_earlier_bar_word_for_word(untrained, seed, meter, first, more):
    gen = Generator(*untrained, window=4)
    song = generate_song(gen, tracks=2, genre="POP", n_bars=first, time_signature=meter, sampling=Sampling(seed=seed))
    longer = gen.extend(song, more, Sampling(seed=seed + 1, top_k=40))
    check_valid(longer)
    assert longer.n_bars == first + more and longer.instruments == song.instruments
    for old, new in zip(bars_of(song), bars_of(longer), strict=True):
        assert new[:first] == old
    heads = [t.head for t in split_words(song.text).tracks]
    assert [t.head for t in split_words(longer.text).tracks] == heads  # instrument and density kept


def test_every_operation_works_on_a_long_song(untrained):
    gen = Generator(*untrained, window=4)
    song = generate_song(gen, tracks=2, genre="ROCK", n_bars=13, time_signature=(3, 4), sampling=Sampling(seed=5))
    check_valid(song)
    assert song.n_bars == 13
    more = gen.add_track(song, new_instrument=True, sampling=Sampling(seed=6))
    check_valid(more)
    assert bars_of(more)[:2] == bars_of(song)
    again = gen.regenerate_last(more, sampling=Sampling(seed=7))
    check_valid(again)
    assert again.instruments == more.instruments and bars_of(again)[:2] == bars_of(song)
    wanted = [0, 5, 6, 12]
    filled = gen.infill(again, 1, wanted, Sampling(seed=8))
    check_valid(filled)
    before, after = bars_of(again), bars_of(filled)
    assert [a for k, a in enumerate(after) if k != 1] == [b for k, b in enumerate(before) if k != 1]
    assert all(after[1][b] == before[1][b] for b in range(13) if b not in wanted)


def test_windows_read_only_recent_bars(untrained):
    """Each window's text holds at most ``window`` bars of a track: memory stays bounded by the window."""
    gen = Generator(*untrained, window=4)
    song = generate_song(gen, tracks=2, genre="POP", n_bars=4, sampling=Sampling(seed=1))
    read = []
    original = gen._sample_words

    def spy(prefix, state, sampling):
        read.append(prefix)
        return original(prefix, state, sampling)

    gen._sample_words = spy
    gen.extend(song, 12, Sampling(seed=2))
    assert len(read) == 2 * 6  # 2 tracks x 6 windows of 2 new bars
    assert all(prefix.count("BAR_START") <= 4 * 2 for prefix in read)


def test_seeded_extension_is_reproducible_and_one_window_songs_are_unchanged(untrained):
    a, b = Generator(*untrained, window=4), Generator(*untrained, window=64)
    song = generate_song(a, tracks=2, genre="POP", n_bars=3, sampling=Sampling(seed=3))
    assert song == generate_song(b, tracks=2, genre="POP", n_bars=3, sampling=Sampling(seed=3))  # one window: as before
    assert a.extend(song, 5, Sampling(seed=4)) == a.extend(song, 5, Sampling(seed=4))


def test_a_window_too_long_for_the_context_is_written_with_fewer_bars(untrained):
    _, tok = untrained
    torch.manual_seed(0)
    small = GPT2LMHeadModel(GPT2Config(vocab_size=tok.vocab_size, n_positions=160, n_embd=16, n_layer=1, n_head=2))
    gen = Generator(small, tok, window=8)
    song = gen.start("POP", n_bars=12, instrument=(0, False), sampling=Sampling(seed=1, temperature=0.5))
    check_valid(song)
    longer = gen.extend(song, 4, Sampling(seed=2, temperature=0.5))
    check_valid(longer)


def test_impossible_extensions_say_why(untrained):
    gen = Generator(*untrained, window=4)
    song = gen.start("POP", n_bars=2, sampling=Sampling(seed=1))
    with pytest.raises(GenerationError, match="no track to extend"):
        gen.extend(Song(n_bars=2), 2)
    with pytest.raises(GenerationError, match=f"at most {MAX_BARS}"):
        gen.extend(song, MAX_BARS)
    with pytest.raises(GenerationError, match="bars must be"):
        gen.extend(song, 0)
    with pytest.raises(GenerationError, match="track 1 has 2 bars, the song 3"):
        gen.extend(Song(n_bars=3, tracks=song.tracks), 2)
    with pytest.raises(GenerationError, match="takes no density"):
        gen.extend(song, 2, density=3)
    with pytest.raises(GenerationError, match=f"at most {MAX_BARS}"):
        generate_song(gen, tracks=1, n_bars=MAX_BARS + 1)


def test_plan_keeps_as_many_recent_bars_as_fit(untrained):
    gen = Generator(*untrained, window=8)
    header, tracks = W.split_song(generate_song(gen, tracks=2, genre="POP", n_bars=8, sampling=Sampling(seed=2)).text)
    assert W.plan(gen, header, tracks[:1], tracks[1], 8, 12) == (4, 12)  # window 8: 4 recent bars
    gen.context = W.window_text(header, tracks, 6, 8).count(" ") + 60
    start, stop = W.plan(gen, header, [], tracks[1], 8, 12)
    assert 4 < start <= 8 and stop <= 12
