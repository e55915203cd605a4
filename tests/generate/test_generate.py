"""Generation with an untrained tiny model (the hardest case for the constraints): always valid."""

from __future__ import annotations

import pytest
import torch
from tiny import check_valid
from transformers import GPT2Config, GPT2LMHeadModel

from mmmgen.generate.sampling import GenerationError, Sampling
from mmmgen.generate.song import Generator, Song
from mmmgen.text.decode import text_to_piece


@pytest.mark.parametrize("seed", range(6))
def test_every_track_is_valid_with_the_requested_bars(generator, seed):
    meter = [(4, 4), (3, 4), (6, 8)][seed % 3]
    song = generator.start("POP", time_signature=meter, n_bars=2 + seed % 3, sampling=Sampling(seed=seed, temperature=1.0))
    song = generator.add_track(song, instrument=(0, True), sampling=Sampling(seed=seed))
    song = generator.add_track(song, new_instrument=True, density=2, sampling=Sampling(seed=seed, top_k=20, top_p=0.9))
    check_valid(song)
    assert song.instruments[1] == (0, True)
    assert len(set(song.instruments)) == 3
    assert text_to_piece(song.text).tracks[2].density == 2


def test_same_seed_same_song_cached_or_not(untrained):
    a, b = Generator(*untrained), Generator(*untrained)
    warm = a.start("ROCK", n_bars=2, sampling=Sampling(seed=7))
    warm = a.add_track(warm, sampling=Sampling(seed=8))  # a's cache now holds the first track
    cold = b.add_track(b.start("ROCK", n_bars=2, sampling=Sampling(seed=7)), sampling=Sampling(seed=8))
    assert warm == cold
    fresh = a.regenerate_last(warm, sampling=Sampling(seed=9))
    assert fresh.tracks[0] == warm.tracks[0] and fresh.instruments == warm.instruments


def test_adding_a_track_reads_only_the_new_words(untrained):
    model, tok = untrained
    gen = Generator(model, tok)
    fed = []
    hook = model.register_forward_pre_hook(lambda m, args, kwargs: fed.append(kwargs["input_ids"].shape[1]), with_kwargs=True)
    try:
        song = gen.start("POP", n_bars=2, sampling=Sampling(seed=1))
        fed.clear()
        gen.add_track(song, sampling=Sampling(seed=2))
    finally:
        hook.remove()
    assert fed[0] == 2  # the first track's last word and TRACK_START: the rest comes from the cache
    assert all(n == 1 for n in fed[1:])


def test_remove_regenerate_tempo(generator):
    song = generator.start("POP", n_bars=1, tempo=90, sampling=Sampling(seed=3))
    assert generator.remove_last(song).tracks == ()
    faster = generator.change_tempo(song, 150)
    assert faster.tracks == song.tracks and faster.tempo == 150
    with pytest.raises(GenerationError, match="no track to remove"):
        generator.remove_last(generator.remove_last(song))
    with pytest.raises(GenerationError, match="no track to regenerate"):
        generator.regenerate_last(generator.remove_last(song))
    with pytest.raises(GenerationError, match="tempo"):
        generator.change_tempo(song, 0)


def test_song_longer_than_the_context_is_a_clear_error(untrained):
    _, tok = untrained
    torch.manual_seed(0)
    small = GPT2LMHeadModel(GPT2Config(vocab_size=tok.vocab_size, n_positions=64, n_embd=16, n_layer=1, n_head=2))
    with pytest.raises(GenerationError, match="exceed the model's context of 64"):
        Generator(small, tok).start("POP", n_bars=8, sampling=Sampling(seed=0))


def test_song_from_text_keeps_tracks_word_for_word(generator):
    song = generator.start("POP", n_bars=2, sampling=Sampling(seed=4))
    again = Song.from_text(song.text)
    assert again.tracks == song.tracks and again.time_signature == song.time_signature and again.n_bars == 2


def test_bad_sampling_settings_are_rejected():
    with pytest.raises(GenerationError):
        Sampling(temperature=0)
    with pytest.raises(GenerationError):
        Sampling(top_p=1.5)


@pytest.mark.parametrize("activation", ["gelu_new", "gelu_pytorch_tanh"])
def test_lean_step_gives_the_models_own_logits(activation):
    from mmmgen.generate.lean import _lean_step, _lean_weights, _LeanCache

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=50, n_positions=64, n_embd=32, n_layer=3, n_head=4, activation_function=activation,
                        bos_token_id=None, eos_token_id=None)
    model = GPT2LMHeadModel(config).eval()
    ids = torch.randint(0, 50, (20,))
    weights, cache = _lean_weights(model), _LeanCache()
    got = [_lean_step(weights, cache, ids[:12])]  # a prompt at once, then one word at a time
    got += [_lean_step(weights, cache, ids[i : i + 1]) for i in range(12, 20)]
    with torch.no_grad():
        want = model(ids[None]).logits[0]
    for k, logits in zip(range(11, 20), got, strict=True):
        torch.testing.assert_close(logits, want[k], atol=1e-4, rtol=1e-4)
    cache.crop(-5)  # drop the last 5 words, read them again: the same logits
    torch.testing.assert_close(_lean_step(weights, cache, ids[15:16]), want[15], atol=1e-4, rtol=1e-4)
    chunked, one = _LeanCache(), _LeanCache()  # a few words a call (forced words) as one at a time
    _lean_step(weights, chunked, ids[:4])
    _lean_step(weights, one, ids[:4])
    for start, stop in [(4, 6), (6, 9), (9, 10), (10, 12), (12, 15), (15, 17), (17, 20)]:
        got = _lean_step(weights, chunked, ids[start:stop].tolist(), per_word=True)
        alone = [_lean_step(weights, one, [int(i)], per_word=True) for i in ids[start:stop]][-1]
        torch.testing.assert_close(got, alone, atol=1e-6, rtol=1e-6)  # bit for bit with MKL here
        torch.testing.assert_close(got, want[stop - 1], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(chunked.kv[:, :, :, :20], one.kv[:, :, :, :20], atol=1e-6, rtol=1e-6)
    handle = model.transformer.h[0].register_forward_hook(lambda *a: None)
    assert _lean_weights(model) is None  # a hook must run: the model's own forward is used
    handle.remove()
    assert _lean_weights(model.train()) is None


def test_forced_words_read_later_give_the_same_song(untrained, monkeypatch):
    """Words the grammar forces are read with the next word (``_CHUNK``): the same words as one at a time."""
    import mmmgen.generate.engine as G

    def song(chunk, seed):
        monkeypatch.setattr(G, "_CHUNK", chunk)
        gen = Generator(*untrained)
        s = gen.start("POP", n_bars=3, instrument=(0, False), density=1, sampling=Sampling(seed=seed))
        s = gen.add_track(s, density=2, sampling=Sampling(seed=seed + 1, top_k=30))
        return gen.add_track(s, new_instrument=True, sampling=Sampling(seed=seed + 2, top_p=0.9)), gen._cache.ids

    for seed in range(3):
        assert song(3, seed) == song(1, seed)  # the songs and the words whose keys/values are cached


def test_draw_takes_the_words_multinomial_takes():
    """``_draw`` samples as ``torch.multinomial`` did (same seed, same words, same generator state after)."""
    import numpy as np

    from mmmgen.generate.sampling import _draw, _probs

    def reference(logits, banned, sampling, gen):  # _draw before it inlined multinomial's one-sample path
        return int(torch.multinomial(_probs(logits, banned, sampling), 1, generator=gen))

    rng = np.random.default_rng(0)
    a, b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for k in range(300):
        logits = torch.randn(200) * float(rng.uniform(0.1, 8))
        banned = rng.random(200) < rng.uniform(0, 0.99)
        banned[rng.integers(200)] = False
        sampling = Sampling(temperature=float(rng.uniform(0.3, 2)), top_k=[0, 1, 5, 50][k % 4], top_p=[1.0, 0.9, 0.5][k % 3])
        assert _draw(logits, banned, sampling, a) == reference(logits, banned, sampling, b)
    assert torch.equal(a.get_state(), b.get_state())
