"""The decoding engine: masked sampling of one track's words with a key/value cache kept between calls.

``Engine`` holds the model and tokenizer (loaded once, passed in). ``_sample_words`` reads a text
(from the cache where it can) and draws words under a grammar state until the state is done: every
sampled word is masked by the rules of ``grammar.py``. Song operations live in ``song.py``.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

import numpy as np

from mmmgen.generate.grammar import DONE, TrackState, VocabTable, allowed
from mmmgen.generate.lean import (
    _growing_cache,
    _lean_step,
    _lean_weights,
    _LeanCache,
    _one_cpu_thread,
)
from mmmgen.generate.sampling import (
    ContextFull,
    GenerationError,
    Sampling,
    _check_stop,
    _draw,
    _report_progress,
    _stop_event,
)
from mmmgen.text import vocab as V

_CHUNK = 3  # most words ``_lean_step(per_word=True)`` reads at once (MKL's addmm rows match one-row calls up to 3 here)


@dataclass
class _Cache:
    ids: list[int] = field(default_factory=list)  # tokens whose keys/values are in ``past``
    past: object = None


class Engine:
    """Constrained, cached sampling of words with a GPT-2 model.

    Args:
        model: a causal LM (``GPT2LMHeadModel``) whose vocabulary is the tokenizer's.
        tokenizer: the run's word-level tokenizer.
        grid: grid steps per quarter of the text (the dataset's setting).
        density_levels: DENSITY levels the model was trained with.
        genres: the genres offered (default: every ``GENRE=`` word of the vocabulary).
        window: bars per training example: longer songs are written window by window (``window.py``).
        density_edges: the dataset's ``DENSITY`` edges (notes per window; ``mmmgen.json``). With them, each
            window's track heads say the density of that window's bars, as in training (``window.window_head``);
            without, a window shows each track's head as the song has it.
    """

    def __init__(self, model, tokenizer, grid: int = 12, density_levels: int = 10, genres: list[str] | None = None,
                 window: int = 8, density_edges: list[float] | None = None):
        import torch

        self.torch = torch
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.grid = grid
        vocab = tokenizer.get_vocab()
        self.table = VocabTable.from_vocab(vocab, grid)
        self.words = {i: w for w, i in vocab.items()}
        self.density_levels = density_levels
        self.genre_words = sorted(V.parse_word(w).value for w in vocab if V.parse_word(w).kind == V.GENRE)
        self.genres = genres or self.genre_words
        self.device = next(model.parameters()).device
        self.context = int(getattr(model.config, "n_positions", 1024))
        self.window = max(int(window), 1)
        self.density_edges = [float(e) for e in density_edges] if density_edges else None
        self._cache = _Cache()
        self._lock = threading.Lock()

    def known_genre(self, genre: str) -> str:
        """``genre`` spelled as a ``GENRE=`` word (``normalize_genre``: ``'Hip hop'`` -> ``HIP_HOP``).

        Raises:
            GenerationError: the model has no word for it (it would read ``[UNK]``); the message lists the genres it knows.
        """
        word = V.normalize_genre(genre)
        if word not in self.genre_words:
            known = ", ".join(self.genres) or "none"
            msg = f"unknown genre {genre!r}: this model knows {known}" + (f" (and {V.OTHER_GENRE})" if V.OTHER_GENRE in self.genre_words and V.OTHER_GENRE not in self.genres else "")
            raise GenerationError(msg)
        return word

    # --- sampling --------------------------------------------------------------------------
    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _sample_words(self, prefix_text: str, state: TrackState, sampling: Sampling) -> list[str]:
        prefix = self._encode(prefix_text)
        with self._lock, self.torch.inference_mode(), _one_cpu_thread(self.torch, self.device):
            out = self._loop(prefix, state, sampling)
        words = [self.words[i] for i in out]
        _report_progress(words)
        return words

    def _loop(self, prefix: list[int], state: TrackState, sampling: Sampling) -> list[int]:
        """Read ``prefix`` (from the cache where it can), then draw words until the track is done.

        One forward pass per word, over that word only. A plain GPT-2 runs through ``_lean_step``
        (the model's own weights and ops without the ``transformers`` call overhead: the same
        logits, 1.4-4x faster per word on CPU); any other model, or one with hooks, through its
        ``forward`` with a cache that grows in place (``_growing_cache``). The grammar mask is numpy
        (~15 us per word).

        On the lean path a word the grammar forces (one allowed word: ``BAR_START`` after
        ``BAR_END``, ``TRACK_END`` after the last bar, a forced ``INST``/``DENSITY``) is not read
        on its own: it is taken without logits, the generator draws the random numbers its draw
        would have used, and it is read with the word before it (``_lean_step(per_word=True)``, at most
        ``_CHUNK`` words a call, bit for bit as one at a time): the same words for a seed, ~10% fewer
        passes over the weights.
        """
        torch = self.torch
        gen = torch.Generator(device="cpu")
        gen.manual_seed(sampling.seed if sampling.seed is not None else random.SystemRandom().getrandbits(63))
        lean = _lean_weights(self.model)
        past, feed = self._reuse(prefix, _LeanCache if lean else None)
        if past is None:
            past = _LeanCache() if lean else _growing_cache()
        n_seen, out, first = len(prefix), [], True
        n_logits = lean[4].shape[0] if lean else 0
        words, table, model, device = self.words, self.table, self.model, self.device
        stop = _stop_event()
        while state.phase != DONE:
            if stop is not None and stop.is_set():
                self._cache = _Cache()  # its keys/values now hold words of this stopped call
                _check_stop(stop)
            if n_seen >= self.context:
                msg = f"the song would exceed the model's context of {self.context} tokens; remove a track or use fewer bars"
                self._cache = _Cache()  # its keys/values now hold words of this failed call
                raise ContextFull(msg)
            mask = allowed(state, table)
            forced = -1
            if lean and not first and len(feed) < _CHUNK and np.count_nonzero(mask[:n_logits]) == 1:
                forced = int(mask[:n_logits].argmax())
            if forced >= 0:  # the draw's random numbers are used as ``_draw`` would; the word is read later
                torch.empty(n_logits).exponential_(1, generator=gen)
                token = forced
            else:
                if lean:
                    logits = _lean_step(lean, past, feed, per_word=not first)
                else:
                    ids = torch.tensor(feed, device=device)
                    result = model(input_ids=ids[None], cache=past, use_cache=True, logits_to_keep=1)
                    past, logits = result.cache, result.logits[0, -1]
                if logits.device.type != "cpu" or logits.dtype != torch.float32:
                    logits = logits.float().cpu()
                token = _draw(logits, ~mask[: logits.shape[0]], sampling, gen)
                feed = []
            first = False
            state.step(words[token])
            out.append(token)
            n_seen += 1
            feed.append(token)
        if len(feed) > 1:  # forced words wait: read them but the last, as one at a time would have
            _lean_step(lean, past, feed[:-1], per_word=True)
        self._cache = _Cache([*prefix, *out[:-1]], past)  # the last word was drawn but not yet read
        return out

    def _reuse(self, prefix: list[int], kind=None):
        """The cached keys/values for the longest shared prefix, and the words still to read.

        ``kind``: ``_LeanCache`` when the lean path reads next, else None (a transformers cache);
        a cache of the other kind is not used.
        """
        cached = self._cache
        if cached.past is not None and isinstance(cached.past, _LeanCache) != (kind is _LeanCache):
            return None, prefix
        n = 0
        for a, b in zip(cached.ids, prefix, strict=False):
            if a != b:
                break
            n += 1
        n = min(n, len(prefix) - 1)  # always read at least one word to get logits
        if cached.past is None or n <= 0:
            return None, prefix
        extra = cached.past.get_seq_length() - n
        if extra > 0:
            cached.past.crop(-extra)  # transformers 5: a negative count of tokens to drop
        return cached.past, prefix[n:]

