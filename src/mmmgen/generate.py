"""Music is generated here, one instrument (track) at a time, always valid.

A ``Song`` is a value: its meter, genre, bar count, tempo and the MMM text of each track. The
``Generator`` holds the model and tokenizer (loaded once, passed in) and turns a song into a new
song: ``start``, ``add_track``, ``regenerate_last``, ``remove_last``, ``change_tempo``. Every
sampled word is masked by the grammar rules of ``constraints.py``, so a new track always parses,
has exactly the song's number of bars and at least one note. The key/value cache of the text
already read is kept between calls, so adding a track reads only the new words.
"""

from __future__ import annotations

import random
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from mmmgen import vocab as V
from mmmgen.codec import text_to_piece
from mmmgen.constraints import DONE, TrackSpec, TrackState, VocabTable, allowed
from mmmgen.errors import MMMGenError


class GenerationError(MMMGenError):
    """An impossible request: no track to remove, a song longer than the model's context, ..."""


@dataclass(frozen=True)
class Sampling:
    """How words are drawn: temperature, top-k, top-p (nucleus), seed (None = fresh randomness)."""

    temperature: float = 0.85
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.temperature <= 5:
            msg = f"temperature must be in (0, 5], got {self.temperature}"
            raise GenerationError(msg)
        if not 0 < self.top_p <= 1 or self.top_k < 0:
            msg = f"top_p must be in (0, 1] and top_k >= 0, got {self.top_p}, {self.top_k}"
            raise GenerationError(msg)


@dataclass(frozen=True)
class Song:
    """A piece being built track by track (a pure value: operations return new songs)."""

    time_signature: tuple[int, int] = (4, 4)
    genre: str = V.OTHER_GENRE
    n_bars: int = 8
    tempo: float = 120.0
    tracks: tuple[str, ...] = ()  # "TRACK_START INST=.. DENSITY=.. BAR_START ... TRACK_END"

    @property
    def header(self) -> str:
        return f"{V.PIECE_START} {V.time_signature(*self.time_signature)} {V.genre(self.genre)}"

    @property
    def text(self) -> str:
        return " ".join([self.header, *self.tracks])

    @property
    def instruments(self) -> list[tuple[int, bool]]:
        """``(program, is_drum)`` of each track, in order."""
        return [(t.program, t.is_drum) for t in text_to_piece(self.text).tracks]

    @classmethod
    def from_text(cls, text: str, tempo: float = 120.0, n_bars: int | None = None) -> Song:
        """A song from MMM text (e.g. a prompt); tracks are kept word for word."""
        piece = text_to_piece(text)
        tracks, current = [], None
        for word in text.split():
            if word == V.TRACK_START:
                current = [word]
            elif current is not None:
                current.append(word)
                if word == V.TRACK_END:
                    tracks.append(" ".join(current))
                    current = None
        bars = n_bars or piece.n_bars or 8
        return cls(piece.time_signature, piece.genre or V.OTHER_GENRE, bars, piece.tempo or tempo, tuple(tracks))


@dataclass
class _Cache:
    ids: list[int] = field(default_factory=list)  # tokens whose keys/values are in ``past``
    past: object = None


class Generator:
    """Constrained, cached, one-track-at-a-time generation with a GPT-2 model.

    Args:
        model: a causal LM (``GPT2LMHeadModel``) whose vocabulary is the tokenizer's.
        tokenizer: the run's word-level tokenizer.
        grid: grid steps per quarter of the text (the dataset's setting).
        density_levels: DENSITY levels the model was trained with.
    """

    def __init__(self, model, tokenizer, grid: int = 12, density_levels: int = 10, genres: list[str] | None = None):
        import torch

        self.torch = torch
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.grid = grid
        vocab = tokenizer.get_vocab()
        self.table = VocabTable.from_vocab(vocab, grid)
        self.words = {i: w for w, i in vocab.items()}
        self.density_levels = density_levels
        self.genres = genres or sorted(
            V.parse_word(w).value for w in vocab if V.parse_word(w).kind == V.GENRE
        )
        self.device = next(model.parameters()).device
        self.context = int(getattr(model.config, "n_positions", 1024))
        self._cache = _Cache()
        self._lock = threading.Lock()

    # --- song operations -----------------------------------------------------------------
    def start(self, genre: str | None = None, time_signature=(4, 4), n_bars: int = 8, tempo: float = 120.0, **track) -> Song:
        """A new song with one track; ``genre=None`` lets the model choose it."""
        genre = V.normalize_genre(genre) if genre else _pick_genre(self, track.get("sampling") or Sampling())
        song = Song(tuple(time_signature), genre, n_bars, tempo)
        return self.add_track(song, **track)

    def add_track(
        self,
        song: Song,
        instrument: tuple[int, bool] | None = None,
        density: int | None = None,
        new_instrument: bool = False,
        sampling: Sampling | None = None,
    ) -> Song:
        """The song with one more track.

        Args:
            instrument: force ``INST=`` (``(program, is_drum)``); None lets the model choose.
            density: force the DENSITY level; None lets the model choose.
            new_instrument: when the model chooses, only instruments the song does not have.
            sampling: temperature / top-k / top-p / seed.
        """
        if density is not None and not 0 <= density < self.density_levels:
            msg = f"density must be in 0..{self.density_levels - 1}, got {density}"
            raise GenerationError(msg)
        instruments = None
        if instrument is not None:
            instruments = [instrument]
        elif new_instrument:
            taken = set(song.instruments)
            instruments = [k for k in self.table.inst if k not in taken]
        spec = TrackSpec(song.n_bars, song.time_signature, instruments, density)
        track = self._sample_track(song.text, spec, sampling or Sampling())
        return replace(song, tracks=(*song.tracks, track))

    def regenerate_last(self, song: Song, **track) -> Song:
        """The song with its last track written anew (same instrument unless another is forced)."""
        if not song.tracks:
            msg = "the song has no track to regenerate"
            raise GenerationError(msg)
        last = song.instruments[-1]
        track.setdefault("instrument", last)
        return self.add_track(self.remove_last(song), **track)

    @staticmethod
    def remove_last(song: Song) -> Song:
        if not song.tracks:
            msg = "the song has no track to remove"
            raise GenerationError(msg)
        return replace(song, tracks=song.tracks[:-1])

    @staticmethod
    def change_tempo(song: Song, tempo: float) -> Song:
        """Tempo is a rendering setting: nothing is regenerated."""
        if not 10 <= tempo <= 400:
            msg = f"tempo must be in 10..400 BPM, got {tempo}"
            raise GenerationError(msg)
        return replace(song, tempo=float(tempo))

    # --- sampling --------------------------------------------------------------------------
    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _sample_track(self, song_text: str, spec: TrackSpec, sampling: Sampling) -> str:
        state = TrackState(spec, self.grid)
        words = self._sample_words(f"{song_text} {V.TRACK_START}", state, sampling)
        text = " ".join([V.TRACK_START, *words])
        piece = text_to_piece(f"PIECE_START {V.time_signature(*spec.time_signature)} {text}", self.grid, strict=True)
        assert piece.tracks[0].n_bars == spec.n_bars and piece.tracks[0].notes, "constraints failed"
        return text

    def _sample_words(self, prefix_text: str, state: TrackState, sampling: Sampling) -> list[str]:
        prefix = self._encode(prefix_text)
        with self._lock, self.torch.inference_mode(), _one_cpu_thread(self.torch, self.device):
            out = self._loop(prefix, state, sampling)
        return [self.words[i] for i in out]

    def infill(self, song: Song, track: int, bars: list[int] | None = None, sampling: Sampling | None = None) -> Song:
        """The song with bars of one track written anew, conditioned on everything else (bar-fill).

        Args:
            track: the track's index in the song (0-based).
            bars: bar indexes (0-based); None regenerates the whole track.

        Every other bar keeps its words. A note that the bar before the span leaves sounding may be
        held into the first new bar (or ends at the bar line); a ``NOTE_HOLD`` in the bar after the
        span continues a note the new bars leave sounding, else it starts the note at the bar line.
        """
        from mmmgen.fill import mask_bars, sounding_at_end, split_words

        sampling = sampling or Sampling()
        if not 0 <= track < len(song.tracks):
            msg = f"track must be 1..{len(song.tracks)}, got {track + 1}"
            raise GenerationError(msg)
        bars = sorted(set(range(song.n_bars) if bars is None else bars))
        if not bars or bars[0] < 0 or bars[-1] >= song.n_bars:
            msg = f"bars must be within 1..{song.n_bars}"
            raise GenerationError(msg)
        piece = split_words(song.text)
        context = mask_bars(song.text, {track: bars}, with_fills=False)
        spec = TrackSpec(1, song.time_signature)
        written: dict[int, list[str]] = {}
        for i, b in enumerate(bars):
            before = written.get(b - 1, piece.tracks[track].bars[b - 1] if b > 0 else [])
            state = TrackState.for_fill(spec, sounding_at_end(before), self.grid)
            seed = None if sampling.seed is None else sampling.seed + i
            context += f" {V.FILL_START}"
            words = self._sample_words(context, state, replace(sampling, seed=seed))
            context += " " + " ".join(words)
            written[b] = words[:-1]  # without FILL_END
        target = piece.tracks[track]
        target.bars = [written.get(b, bar) for b, bar in enumerate(target.bars)]
        tracks = tuple(target.text() if k == track else t for k, t in enumerate(song.tracks))
        result = replace(song, tracks=tracks)
        assert text_to_piece(result.text, self.grid, strict=True).tracks[track].n_bars == song.n_bars
        return result

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
        while state.phase != DONE:
            if n_seen >= self.context:
                msg = f"the song would exceed the model's context of {self.context} tokens; remove a track or use fewer bars"
                raise GenerationError(msg)
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


_CHUNK = 3  # most words ``_lean_step(per_word=True)`` reads at once (MKL's addmm rows match one-row calls up to 3 here)


def _probs(logits, banned: np.ndarray, sampling: Sampling):
    """Probabilities of the next word: ``banned`` words left out, then temperature, top-k and top-p."""
    import torch

    logits = logits.masked_fill(torch.from_numpy(banned), float("-inf")).div_(sampling.temperature)
    if sampling.top_k:
        kth = torch.topk(logits, min(sampling.top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, -1)
    if sampling.top_p < 1:
        sorted_p, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_p, 0) - sorted_p < sampling.top_p  # always keeps the top word
        probs = torch.zeros_like(probs).scatter(0, order, sorted_p * keep)
    return probs


def _draw(logits, banned: np.ndarray, sampling: Sampling, gen) -> int:
    """Sample one id from ``_probs`` with the seeded generator.

    It draws as ``torch.multinomial(probs, 1)`` does (one ``Exp(1)`` per word, the argmax of
    ``probs / noise``: its fast path for one sample), without its checks of the probabilities
    (several passes over them; they hold by construction): a seed gives the same words.
    """
    import torch

    probs = _probs(logits, banned, sampling)
    noise = torch.empty_like(probs).exponential_(1, generator=gen)
    return int(torch.div(probs, noise, out=noise).argmax())


class _LeanCache:
    """Keys and values of the words read by ``_lean_step`` (batch 1), in one buffer with room to grow.

    ``kv``: ``[layers, 2 (keys, values), heads, room, head_dim]``, the first ``length`` positions
    filled, so a word's keys and values go in with one copy per layer; ``layers`` holds each
    layer's views (both, keys, values as ``[1, heads, room, head_dim]``), made once per buffer.
    Same ``get_seq_length`` / ``crop(-n)`` as a transformers cache, for ``_reuse``.
    """

    def __init__(self) -> None:
        self.length, self.kv, self.layers = 0, None, []

    def get_seq_length(self) -> int:
        return self.length

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:
            msg = "crop takes a negative count of tokens to remove"
            raise ValueError(msg)
        self.length = max(self.length + tokens_to_remove, 0)

    def reserve(self, need: int, like, layers: int, heads: int, head_dim: int) -> None:
        room = 0 if self.kv is None else self.kv.shape[3]
        if need <= room:
            return
        room = max(need, 2 * room, 256)
        kv = like.new_empty((layers, 2, heads, room, head_dim))
        if self.length:
            kv[:, :, :, : self.length] = self.kv[:, :, :, : self.length]
        self.kv = kv
        self.layers = [(kv[i], kv[i, 0][None], kv[i, 1][None]) for i in range(layers)]


def _lean_weights(model):
    """The modules ``_lean_step`` reads, or None when the model must run through its ``forward``.

    Only a ``GPT2LMHeadModel`` in eval mode, with self-attention only, no hooks on any module
    (they would be skipped) and no upcast/reordered attention: what ``mmmgen`` builds and loads.
    """
    import torch

    if type(model).__name__ != "GPT2LMHeadModel" or model.training:
        return None
    cfg = model.config
    if getattr(cfg, "add_cross_attention", False) or getattr(cfg, "reorder_and_upcast_attn", False):
        return None
    if model.lm_head.bias is not None:
        return None
    nn_module = torch.nn.modules.module
    if getattr(nn_module, "_global_forward_hooks", None) or getattr(nn_module, "_global_forward_pre_hooks", None):
        return None
    if any(m._forward_hooks or m._forward_pre_hooks for m in model.modules()):
        return None
    t = model.transformer
    layers = [
        (b.ln_1.weight, b.ln_1.bias, b.ln_1.eps, b.attn.c_attn.weight, b.attn.c_attn.bias, b.attn.scaling,
         b.attn.c_proj.weight, b.attn.c_proj.bias, b.ln_2.weight, b.ln_2.bias, b.ln_2.eps,
         b.mlp.c_fc.weight, b.mlp.c_fc.bias, b.mlp.act.forward, b.mlp.c_proj.weight, b.mlp.c_proj.bias)
        for b in t.h
    ]  # plain tuples: no nn.Module attribute lookups per word
    return (t.wte.weight, t.wpe.weight, layers, (t.ln_f.weight, t.ln_f.bias, t.ln_f.eps), model.lm_head.weight,
            t.h[0].attn.num_heads)


def _lean_step(weights, cache: _LeanCache, tokens, per_word: bool = False):
    """GPT-2's forward over new words ``tokens`` (a list or 1-D tensor) after the cached ones: the last word's logits.

    The same ops as ``transformers``' GPT-2 (layer norms, ``Conv1D`` as ``addmm``, SDPA attention
    with the model's scaling, the model's own activation), called directly: at one word per call
    the Python of the ``transformers`` modules costs as much as the arithmetic on small models.

    Several words take the matrix products at once (the weights, most of a word's time, are read
    once). Their attention is one SDPA with a causal mask (reading a prompt), or with
    ``per_word`` one unmasked SDPA per word over the words up to itself: the same ops on the same
    values as one word per call, so the same logits and cache bit for bit (a masked SDPA over
    several queries rounds differently; each row of ``addmm`` comes out as alone). ``_loop``
    reads a drawn word and the forced words after it (those the grammar leaves no choice about,
    e.g. ``BAR_START`` after ``BAR_END``) with one ``per_word`` call.
    """
    import torch
    import torch.nn.functional as F

    wte, wpe, layers, (lnf_w, lnf_b, lnf_eps), head, heads = weights
    n, count = cache.length, len(tokens)
    end = n + count
    first = int(tokens[0])
    x = (wte[first : first + 1] if count == 1 else wte[torch.as_tensor(tokens, device=wte.device)]) + wpe[n:end]
    width = x.shape[1]
    head_dim = width // heads
    cache.reserve(end, x, len(layers), heads, head_dim)
    mask = None
    if count > 1 and not per_word:  # word i sees the cached words and new words up to itself
        mask = torch.arange(end, device=x.device)[None, :] <= torch.arange(n, end, device=x.device)[:, None]
    shape, addmm, layer_norm, sdpa = (width,), torch.addmm, torch.layer_norm, F.scaled_dot_product_attention
    for (ln1_w, ln1_b, eps1, qkv_w, qkv_b, scale, out_w, out_b, ln2_w, ln2_b, eps2, fc_w, fc_b, act, proj_w, proj_b), (kv, keys, values) in zip(
        layers, cache.layers, strict=True
    ):
        y = addmm(qkv_b, layer_norm(x, shape, ln1_w, ln1_b, eps1), qkv_w)
        if mask is not None:
            qkv = y.view(count, 3, heads, head_dim).permute(1, 2, 0, 3)
            kv[:, :, n:end] = qkv[1:]
            a = sdpa(qkv[0][None], keys[:, :, :end], values[:, :, :end], attn_mask=mask, scale=scale)
            a = a[0].transpose(0, 1).reshape(count, width)
        else:
            qkv = y.view(count, 3, heads, 1, head_dim)
            if count == 1:
                kv[:, :, n:end] = qkv[0, 1:]
                a = sdpa(qkv[0, :1], keys[:, :, :end], values[:, :, :end], scale=scale).reshape(1, width)
            else:
                kv[:, :, n:end] = qkv[:, 1:].permute(1, 2, 0, 3, 4).reshape(2, heads, count, head_dim)
                a = torch.cat([sdpa(qkv[j, :1], keys[:, :, : n + j + 1], values[:, :, : n + j + 1], scale=scale).reshape(1, width)
                               for j in range(count)])
        x = addmm(out_b, a, out_w).add_(x)
        x = addmm(proj_b, act(addmm(fc_b, layer_norm(x, shape, ln2_w, ln2_b, eps2), fc_w)), proj_w).add_(x)
    cache.length = end
    return F.linear(layer_norm(x[-1:], shape, lnf_w, lnf_b, lnf_eps), head)[0]


_THREADS_LOCK = threading.Lock()
_THREADS = {"users": 0, "saved": 1}


@contextmanager
def _one_cpu_thread(torch, device):
    """Run the sampling loop on one intra-op thread on CPU (the thread count is restored after).

    One word at a time, the matrices are too small for torch's threads to pay: on a 2-core
    machine with other work running, two threads made each word 4-5x slower (spinning threads
    waiting for each other; see benchmarks/README.md). Nested or concurrent generations share it.
    """
    if device.type != "cpu":
        yield
        return
    with _THREADS_LOCK:
        if _THREADS["users"] == 0:
            _THREADS["saved"] = torch.get_num_threads()
            if _THREADS["saved"] != 1:
                torch.set_num_threads(1)
        _THREADS["users"] += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _THREADS["users"] -= 1
            if _THREADS["users"] == 0 and _THREADS["saved"] != 1:
                torch.set_num_threads(_THREADS["saved"])


def _growing_cache():
    """A ``DynamicCache`` whose layers write into buffers with room to grow (``_GrowingLayer``)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    cache.layer_class_to_replicate = _growing_layer_class()
    return cache


_GROWING_LAYER = None


def _growing_layer_class():
    """``DynamicLayer`` that appends a word's keys/values in place instead of copying the whole cache.

    ``DynamicLayer`` concatenates at every word, copying all cached keys/values (``O(length)`` per
    word: milliseconds per word for a 6 x 512 model near 2048 tokens). This layer keeps buffers with
    spare room (doubled when full) and returns views of the filled part, so attention still reads
    only the words so far. ``crop`` just moves the end back.
    """
    global _GROWING_LAYER
    if _GROWING_LAYER is not None:
        return _GROWING_LAYER
    from transformers.cache_utils import DynamicLayer

    class _GrowingLayer(DynamicLayer):
        def lazy_initialization(self, key_states, value_states) -> None:
            self.device = key_states.device
            self.length, self.key_buffer, self.value_buffer = 0, None, None
            self.keys = key_states[..., :0, :]
            self.values = value_states[..., :0, :]
            self.is_initialized = True

        def _reserve(self, need: int, key_states, value_states) -> None:
            room = 0 if self.key_buffer is None else self.key_buffer.shape[-2]
            if need <= room:
                return
            room = max(need, 2 * room, 256)
            keys = key_states.new_empty((*key_states.shape[:-2], room, key_states.shape[-1]))
            values = value_states.new_empty((*value_states.shape[:-2], room, value_states.shape[-1]))
            if self.length:
                keys[..., : self.length, :] = self.key_buffer[..., : self.length, :]
                values[..., : self.length, :] = self.value_buffer[..., : self.length, :]
            self.key_buffer, self.value_buffer = keys, values

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            start, end = self.length, self.length + key_states.shape[-2]
            self._reserve(end, key_states, value_states)
            self.key_buffer[..., start:end, :] = key_states
            self.value_buffer[..., start:end, :] = value_states
            self.length = end
            self.keys, self.values = self.key_buffer[..., :end, :], self.value_buffer[..., :end, :]
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.length if self.is_initialized else 0

        def crop(self, tokens_to_remove: int) -> None:
            if tokens_to_remove > 0:
                msg = "crop takes a negative count of tokens to remove"
                raise ValueError(msg)
            if tokens_to_remove == 0 or not self.is_initialized or self.key_buffer is None:
                return
            self.length = max(self.length + tokens_to_remove, 0)
            self.keys, self.values = self.key_buffer[..., : self.length, :], self.value_buffer[..., : self.length, :]

        def reset(self) -> None:
            self.length, self.key_buffer, self.value_buffer = 0, None, None
            super().reset()

    _GROWING_LAYER = _GrowingLayer
    return _GrowingLayer


def instrument_label(program: int, is_drum: bool) -> str:
    """``'Violin (40)'`` / ``'Drums'`` for lists shown to people."""
    try:
        from mmmgen.gm import instrument_name
    except ImportError:  # pragma: no cover - gm arrives with the rendering module
        return "Drums" if is_drum else f"Program {program}"
    return instrument_name(program, is_drum)



# --- whole pieces, prompts and run folders (used by the CLI and the app) ----------------------
def run_genres(settings: dict) -> list[str] | None:
    """The genres a run was trained on (``mmmgen.json``), without the catch-all OTHER; None if none."""
    return [g for g in settings.get("genre_labels", []) if g != V.OTHER_GENRE] or None


def generator_for(model, tokenizer, settings: dict) -> Generator:
    """A ``Generator`` that writes the words of a run's settings (grid, density levels, genres)."""
    codec = settings.get("codec", {})
    return Generator(model, tokenizer, grid=codec.get("grid", 12), density_levels=codec.get("density_levels", 10),
                     genres=run_genres(settings))


def generator_from_run(run_dir) -> tuple[Generator, dict]:
    """A ``Generator`` over a trained run folder, and the run's settings (``mmmgen.json``)."""
    from mmmgen.model import load_run

    model, tokenizer, settings = load_run(run_dir)
    return generator_for(model, tokenizer, settings), settings


def default_model_dir():
    """The model shipped with the package (``mmmgen/resources/default_model``), or None when absent."""
    from importlib.resources import files
    from pathlib import Path

    path = Path(str(files("mmmgen") / "resources" / "default_model"))
    return path if (path / "config.json").is_file() else None


def find_run(model: str | None, search=("runs", "models")):
    """The run folder to use.

    ``model``: a run folder; ``latest`` for the newest local run under ``runs/`` or ``models/``;
    None for the model shipped with the package (or, in a checkout without it, the newest local run).
    """
    from pathlib import Path

    from mmmgen.model import SETTINGS_NAME

    if model and model != "latest":
        return Path(model)
    if model is None and (shipped := default_model_dir()) is not None:
        return shipped
    runs = [p.parent for d in search if Path(d).is_dir() for p in Path(d).glob(f"**/{SETTINGS_NAME}")]
    runs = [r for r in runs if (r / "config.json").is_file()]
    if not runs:
        msg = (
            "no trained model found: pass --model RUN, or train one first, e.g.\n"
            "  mmmgen corpus data/corpus --collections BACH\n"
            "  mmmgen prepare data/corpus data/dataset --genres data/corpus/genres.csv\n"
            "  mmmgen tokenizer data/dataset data/tokenizer\n"
            "  mmmgen train --dataset data/dataset --tokenizer data/tokenizer --output-dir runs/bach --preset small"
        )
        raise GenerationError(msg)
    return max(runs, key=lambda r: (r / "config.json").stat().st_mtime)


def prompt_song(path, settings: dict, tempo: float = 120.0) -> Song:
    """The song a prompt file starts: the first window of a MIDI file, or the first line of MMM text."""
    from pathlib import Path

    from mmmgen.codec import score_to_windows, window_to_text
    from mmmgen.config import CodecConfig
    from mmmgen.data import load_score

    path = Path(path)
    codec = settings.get("codec", {})
    bars, grid = codec.get("bars", 8), codec.get("grid", 12)
    if not path.is_file():
        msg = f"prompt not found: {path}"
        raise GenerationError(msg)
    if path.suffix.lower() in (".mid", ".midi"):
        windows = score_to_windows(load_score(path), CodecConfig(grid=grid, bars=bars))
        if not windows:
            msg = f"{path}: no bars with notes"
            raise GenerationError(msg)
        text = window_to_text(windows[0], V.OTHER_GENRE, settings.get("density_edges"), grid)
    else:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not lines:
            msg = f"{path}: empty prompt"
            raise GenerationError(msg)
        text = lines[0]
    return Song.from_text(text, tempo=tempo, n_bars=text_to_piece(text, grid).n_bars or bars)


def generate_song(
    generator: Generator,
    tracks: int = 4,
    genre: str | None = None,
    instruments: list[tuple[int, bool]] | None = None,
    density: int | None = None,
    n_bars: int = 8,
    time_signature: tuple[int, int] = (4, 4),
    tempo: float = 120.0,
    sampling: Sampling | None = None,
    prompt: Song | None = None,
) -> Song:
    """A piece of ``tracks`` new tracks (after the prompt's, if any); track i uses ``instruments[i]``."""
    sampling = sampling or Sampling()
    song = prompt or Song(tuple(time_signature), V.normalize_genre(genre) if genre else _pick_genre(generator, sampling), n_bars, tempo)
    instruments = list(instruments or [])
    for i in range(tracks):
        seed = None if sampling.seed is None else sampling.seed + i
        inst = instruments[i] if i < len(instruments) else None
        song = generator.add_track(song, instrument=inst, density=density, new_instrument=inst is None, sampling=replace(sampling, seed=seed))
    return song


def _pick_genre(generator: Generator, sampling: Sampling) -> str:
    return random.Random(sampling.seed).choice(generator.genres) if generator.genres else V.OTHER_GENRE
