"""GPT-2 one word at a time without the ``transformers`` call overhead, and key/value caches that grow in place.

``_lean_step`` reads the model's own weights with the model's own ops (the same logits, 1.4-4x
faster per word on CPU: benchmarks/bench_generate.py); ``_growing_cache`` serves any other model.
"""

from __future__ import annotations

import functools
import threading
from contextlib import contextmanager


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


@functools.cache
def _growing_layer_class():
    """``DynamicLayer`` that appends a word's keys/values in place instead of copying the whole cache.

    ``DynamicLayer`` concatenates at every word, copying all cached keys/values (``O(length)`` per
    word: milliseconds per word for a 6 x 512 model near 2048 tokens). This layer keeps buffers with
    spare room (doubled when full) and returns views of the filled part, so attention still reads
    only the words so far. ``crop`` just moves the end back.
    """
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

    return _GrowingLayer


