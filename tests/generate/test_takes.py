"""Takes (``takes=N``): decoded as one batch, each reproducible from its seed, valid, scored."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from tiny import check_valid, untrained_model

from mmmgen.generate.batch import _LeanRows
from mmmgen.generate.grammar import DONE, TrackSpec, TrackState, allowed
from mmmgen.generate.lean import _lean_step, _lean_weights, _LeanCache
from mmmgen.generate.sampling import GenerationError, Sampling, _draw, _draw_rows
from mmmgen.generate.song import Generator, Song, Take, generate_song, rank_takes
from mmmgen.text import vocab as V
from mmmgen.text.decode import text_to_piece


def replay(generator: Generator, track: str, spec: TrackSpec) -> None:
    """Every word of ``track`` after TRACK_START was allowed by the grammar when it was drawn."""
    state = TrackState(spec, generator.grid)
    vocab = generator.tokenizer.get_vocab()
    for word in track.split()[1:]:
        assert state.phase != DONE
        assert allowed(state, generator.table)[vocab[word]], f"{word} was not allowed"
        state.step(word)
    assert state.phase == DONE


def test_takes_are_valid_distinct_and_reproducible_from_their_seeds(untrained):
    gen = Generator(*untrained)
    sampling = Sampling(seed=11, temperature=1.0)
    takes = gen.start("POP", n_bars=2, sampling=sampling, takes=4)
    assert [t.seed for t in takes] == [11, 12, 13, 14]
    assert all(isinstance(t, Take) for t in takes)
    assert len({t.song for t in takes}) > 1
    for take in takes:
        check_valid(take.song)
        assert np.isfinite(take.log_likelihood_per_note) and take.log_likelihood_per_note < 0
        alone = Generator(*untrained).start("POP", n_bars=2, sampling=replace(sampling, seed=take.seed))
        assert alone == take.song


def test_a_seed_gives_the_same_take_in_a_batch_of_one_and_of_four(generator):
    song = generator.start("ROCK", n_bars=2, sampling=Sampling(seed=1))
    four = generator.add_track(song, sampling=Sampling(seed=20, top_k=30, top_p=0.95), takes=4)
    for k in range(4):
        (one,) = generator.add_track(song, sampling=Sampling(seed=20 + k, top_k=30, top_p=0.95), takes=1)
        assert one.song == four[k].song and one.seed == four[k].seed
        assert one.log_likelihood_per_note == pytest.approx(four[k].log_likelihood_per_note, rel=1e-5)


def test_every_operation_takes_and_each_take_is_its_seed_alone(untrained):
    gen = Generator(*untrained)
    s = Sampling(seed=3)
    song = generate_song(gen, 2, "POP", n_bars=3, sampling=s)
    cases = [
        (lambda g, **kw: g.add_track(song, instrument=(0, True), density=2, **kw)),
        (lambda g, **kw: g.regenerate_last(song, **kw)),
        (lambda g, **kw: g.infill(song, 1, [0, 2], **kw)),
        (lambda g, **kw: generate_song(g, 3, None, n_bars=2, **kw)),
    ]
    for op in cases:
        takes = op(gen, sampling=s, takes=3)
        assert len(takes) == 3
        for take in takes:
            check_valid(take.song)
            assert op(Generator(*untrained), sampling=replace(s, seed=take.seed)) == take.song


def test_a_fresh_seed_is_recorded_and_reproduces_the_take(untrained):
    gen = Generator(*untrained)
    takes = gen.start(None, n_bars=2, sampling=Sampling(), takes=2)
    assert takes[1].seed == takes[0].seed + 1
    for take in takes:
        assert gen.start(None, n_bars=2, sampling=Sampling(seed=take.seed)) == take.song


def test_grammar_masks_are_obeyed_in_every_row(generator):
    song = generator.start("POP", n_bars=2, sampling=Sampling(seed=2))
    takes = generator.add_track(song, instrument=(0, True), density=3, sampling=Sampling(seed=5, temperature=2.0), takes=6)
    spec = TrackSpec(2, (4, 4), [(0, True)], 3)
    for take in takes:
        track = take.song.tracks[-1]
        assert take.song.tracks[:-1] == song.tracks
        replay(generator, track, spec)
        assert text_to_piece(take.song.text).tracks[-1].density == 3


def test_infill_takes_keep_every_other_bar(generator):
    from mmmgen.text.fill import split_words

    song = generate_song(generator, 2, "ROCK", n_bars=4, sampling=Sampling(seed=8))
    takes = generator.infill(song, 0, [1, 2], sampling=Sampling(seed=9), takes=4)
    before = split_words(song.text)
    for take in takes:
        after = split_words(take.song.text)
        assert after.tracks[1].bars == before.tracks[1].bars
        assert [after.tracks[0].bars[b] for b in (0, 3)] == [before.tracks[0].bars[b] for b in (0, 3)]
        check_valid(take.song)


def test_log_likelihood_per_note_is_the_models_own(untrained):
    model, tok = untrained
    gen = Generator(model, tok)
    song = gen.start("POP", n_bars=2, sampling=Sampling(seed=4))
    for take in gen.add_track(song, sampling=Sampling(seed=6, temperature=1.3), takes=3):
        prompt = tok(f"{song.text} {V.TRACK_START}", add_special_tokens=False)["input_ids"]
        full = tok(take.song.text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([full])).logits[0].float(), -1)
        drawn = range(len(prompt), len(full))
        total = sum(float(logp[i - 1, full[i]]) for i in drawn)
        notes = sum(w.startswith(V.NOTE_ON) for w in take.song.tracks[-1].split())
        assert take.log_likelihood_per_note == pytest.approx(total / notes, rel=1e-4, abs=1e-4)


def test_rank_takes_puts_the_most_likely_first():
    song = Song()
    takes = [Take(song, 1, -3.0), Take(song, 2, -1.5), Take(song, 3, -2.0), Take(song, 4, -1.5)]
    assert [t.seed for t in rank_takes(takes)] == [2, 4, 3, 1]


def test_bad_take_counts_and_long_songs_are_clear_errors(untrained):
    gen = Generator(*untrained)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(GenerationError, match="takes"):
            gen.start("POP", n_bars=2, sampling=Sampling(seed=1), takes=bad)
    model, tok = untrained_model(n_positions=64)
    with pytest.raises(GenerationError, match="context"):
        Generator(model, tok).start("POP", n_bars=8, sampling=Sampling(seed=1), takes=3)


def test_models_off_the_lean_path_run_their_takes_row_by_row(untrained):
    model, tok = untrained
    gen = Generator(model, tok)
    calls = []
    hook = model.register_forward_pre_hook(lambda m, args, kwargs: calls.append(1), with_kwargs=True)
    try:
        takes = gen.start("ROCK", n_bars=2, sampling=Sampling(seed=30), takes=3)
        assert calls  # the model's forward ran (the hook keeps it off the lean path)
        for take in takes:
            check_valid(take.song)
            assert gen.start("ROCK", n_bars=2, sampling=Sampling(seed=take.seed)) == take.song
    finally:
        hook.remove()


def test_batched_draw_draws_each_row_as_alone():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 300, generator=g)
    banned = np.zeros((5, 300), dtype=bool)
    banned[:, ::3] = True
    for sampling in (Sampling(seed=0), Sampling(top_k=7, temperature=0.7), Sampling(top_p=0.8)):
        gens = [torch.Generator().manual_seed(100 + r) for r in range(5)]
        together = _draw_rows(logits, banned, sampling, gens)
        alone = [_draw(logits[r], banned[r], sampling, torch.Generator().manual_seed(100 + r)) for r in range(5)]
        assert together == alone
        assert all(not banned[r, w] for r, w in enumerate(together))


def test_batched_lean_rows_give_each_rows_own_logits(untrained):
    """Rows with different, ragged texts (padding, masks, a row taken back) get the logits of their text alone."""
    model, _tok = untrained
    lean = _lean_weights(model)
    shared = [5, 9, 14]
    start = _LeanCache()
    _lean_step(lean, start, shared)
    rows = _LeanRows(lean, 3, 4096, start)
    texts = [[*shared, 20, 21, 22, 23, 24, 25, 26], [*shared, 30], [*shared, 40, 41, 42, 43, 44, 45]]
    logits = rows.read([t[3:] for t in texts])  # one chunk, padded: masks from here on
    rows.rewind(1, 3)  # row 1 takes its word back and reads another
    texts[1] = [*shared, 31, 32]
    step = rows.read([[t] for t in (27, 31, 46)])
    logits2 = rows.read([[28], [32], [47]])
    finished = rows.read([None, [33], [48]])  # row 0 is done: moved behind the others, left out
    last = rows.read([None, [34], None])
    texts[0] += [27, 28]
    texts[2] += [46, 47]
    with torch.no_grad():
        for r in range(3):
            full = model(torch.tensor([texts[r]])).logits[0]
            n_first = 3 + (7, 1, 6)[r]
            if r != 1:
                torch.testing.assert_close(logits[r], full[n_first - 1], atol=1e-4, rtol=1e-4)
                torch.testing.assert_close(step[r], full[n_first], atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(logits2[r], full[-1], atol=1e-4, rtol=1e-4)
        longer = model(torch.tensor([[*texts[1], 33, 34]])).logits[0]
        torch.testing.assert_close(finished[1], longer[-2], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(finished[2], model(torch.tensor([[*texts[2], 48]])).logits[0, -1], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(last[1], longer[-1], atol=1e-4, rtol=1e-4)
    assert rows.live == 1


def test_long_songs_and_extend_have_takes_too(untrained):
    """Window by window (``window.py`` programs): takes of a song longer than the window, and of ``extend``."""
    gen = Generator(*untrained, window=2)
    s = Sampling(seed=5)
    song = generate_song(gen, 2, "POP", n_bars=2, sampling=s)
    cases = [
        (lambda g, **kw: g.extend(song, 3, **kw)),
        (lambda g, **kw: generate_song(g, 2, "POP", n_bars=5, **kw)),
        (lambda g, **kw: g.infill(g.extend(song, 2, sampling=s), 0, [3], **kw)),
    ]
    for op in cases:
        takes = op(gen, sampling=s, takes=2)
        assert len(takes) == 2 and takes[0].song != takes[1].song
        for take in takes:
            check_valid(take.song)
            assert take.song.n_bars in (4, 5)
            assert op(Generator(*untrained, window=2), sampling=replace(s, seed=take.seed)) == take.song
    for take in gen.extend(song, 3, sampling=s, takes=2):  # earlier bars stay word for word
        for old, new in zip(song.tracks, take.song.tracks, strict=True):
            assert new.startswith(old.rsplit(" TRACK_END", 1)[0])
