"""A tiny untrained GPT-2 over the full MMM vocabulary: the hardest case for constrained generation."""

from __future__ import annotations

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from mmmgen.text import vocab as V


def word_tokenizer(words: list[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token=V.UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=V.UNK, pad_token=V.PAD)


def untrained_model(genres=("POP", "ROCK"), n_positions: int = 4096, seed: int = 0):
    """``(model, tokenizer)``: 2 layers x 32 dims, random weights."""
    import torch

    words = [*V.SPECIAL_TOKENS, *V.all_words(genres=list(genres))]
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(words), n_positions=n_positions, n_embd=32, n_layer=2, n_head=2, bos_token_id=None, eos_token_id=None
    )
    return GPT2LMHeadModel(config), word_tokenizer(words)


def check_valid(song) -> None:
    """Every track of ``song`` parses strictly with the song's bar count and at least one note."""
    from mmmgen.text.decode import text_to_piece

    piece = text_to_piece(song.text, strict=True)
    assert len(piece.tracks) == len(song.tracks)
    for track in piece.tracks:
        assert track.n_bars == song.n_bars and track.notes


def random_walk(s, table, words: list[str], rng, time_share: float) -> list[str]:
    """Random words among those ``grammar.allowed`` leaves until the track is done (uniform: the worst
    model); a time step is taken with probability ``time_share`` when one is allowed."""
    import numpy as np

    from mmmgen.generate.grammar import DONE, allowed

    out = []
    while s.phase != DONE:
        options = np.flatnonzero(allowed(s, table))
        assert len(options), "no word allowed"
        if rng.random() < time_share and any(words[i].startswith(V.TIME_DELTA) for i in options):
            options = [i for i in options if words[i].startswith(V.TIME_DELTA)]
        word = words[int(rng.choice(options))]
        s.step(word)
        out.append(word)
        assert len(out) < 5000
    return out
