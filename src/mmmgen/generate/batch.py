"""Several takes decoded as one batch: one row per take, each with its own grammar state and seed.

``run_rows`` drives row *programs* (Python generators, see ``song.py``): a program yields
``(text, state, seed)`` -- read ``text``, then draw words under ``state`` with a generator seeded
``seed`` until the state is done -- receives the drawn words and either yields the next request
(the next track of a piece, the next bar of an infill; its text extends what the row has read) or
returns its result. All rows advance in lockstep, one word per step, so each step is one batched
pass over the weights: on a CPU a few rows cost little more than one.

The prompt the rows share is read once, at batch 1 (reusing the engine's cache), and its
keys/values are copied to every row (``_LeanRows``); a row's own words then go in its own row.
A row whose program has returned is moved behind the others and left out of the
following steps (rows never see each other). Reproducibility: row ``i`` draws from its own ``torch.Generator`` exactly the random
numbers one row alone would, so a seed gives the same take in a batch of any size as long as the
logits agree; a batched matrix product can round the last bits differently from a one-row one,
which changes a word only where two candidates tie to within that rounding.

Models the lean step cannot run (``lean._lean_weights`` is None) are run row by row through their
``forward`` with one ``transformers`` cache per row (``_ForwardRows``): correct, not faster.
"""

from __future__ import annotations

import random

import numpy as np

from mmmgen.generate.grammar import DONE, allowed
from mmmgen.generate.lean import (
    _growing_cache,
    _lean_step,
    _lean_weights,
    _LeanCache,
    _one_cpu_thread,
)
from mmmgen.generate.sampling import (
    ContextFull,
    _check_stop,
    _draw_rows,
    _report_progress,
    _stop_event,
)
from mmmgen.text import vocab as V

_READ_AT_ONCE = 4  # pending words longer than this are read as one chunk (padded, masked) instead of a word a step


def fresh_seed() -> int:
    """A random seed (recorded in the takes so each can be made again)."""
    return random.SystemRandom().getrandbits(62)


class _LeanRows:
    """Keys/values of ``rows`` rows for the lean GPT-2 step, and the batched step itself.

    ``kv``: ``[layers, 2, rows, heads, room, head_dim]``; slot ``s`` of every row is written by
    the same step, so rows stay aligned. ``valid[r, s]``: slot ``s`` of row ``r`` holds one of its
    words (not padding, not a word taken back by ``rewind``); attention is masked by it only
    when some slot is not valid (``dense`` False). ``pos[r]``: words row ``r`` has read (its next
    position); ``slots[r]``: the slot of each of them.
    """

    def __init__(self, weights, rows: int, context: int, start: _LeanCache | None) -> None:
        wte, _, layers, _, _, heads = weights
        self.weights, self.rows, self.context = weights, rows, context
        self.n_layers, self.heads, self.head_dim = len(layers), heads, wte.shape[1] // heads
        self.kv, self.valid, self.layers, self.end, self.dense = None, None, [], 0, True
        self.pos, self.slots = [0] * rows, [[] for _ in range(rows)]
        self.live, self.phys, self.logical = rows, list(range(rows)), list(range(rows))
        self.packed = _pack(weights, rows) if rows > 1 else None
        if start is not None and start.length:
            n = start.length
            self._reserve(n)
            self.kv[:, :, :, :, :n] = start.kv[:, :, None, :, :n]
            self.valid[:, :n] = True
            self.end, self.pos, self.slots = n, [n] * rows, [list(range(n)) for _ in range(rows)]

    def _reserve(self, need: int) -> None:
        import torch

        room = 0 if self.kv is None else self.kv.shape[4]
        if need <= room:
            return
        room = max(need, 2 * room, 256)
        wte = self.weights[0]
        kv = wte.new_empty((self.n_layers, 2, self.rows, self.heads, room, self.head_dim))
        valid = torch.zeros((self.rows, room), dtype=torch.bool, device=wte.device)
        if self.end:
            kv[:, :, :, :, : self.end] = self.kv[:, :, :, :, : self.end]
            valid[:, : self.end] = self.valid[:, : self.end]
        self.kv, self.valid = kv, valid
        self.layers = [(kv[i], kv[i, 0], kv[i, 1]) for i in range(self.n_layers)]

    def rewind(self, row: int, keep: int) -> None:
        """Row ``row`` forgets all but its first ``keep`` words."""
        drop = self.slots[row][keep:]
        if drop:
            self.valid[self.phys[row], drop] = False
            self.dense = False
            del self.slots[row][keep:]
        self.pos[row] = keep

    def _retire(self, row: int) -> None:
        """Row ``row`` is done: its keys/values move behind the live rows, which alone are computed from now on."""
        p, q = self.phys[row], self.live - 1
        if p != q:
            end, other = self.end, self.logical[q]
            self.kv[:, :, [p, q], :, :end] = self.kv[:, :, [q, p], :, :end]
            self.valid[[p, q], :end] = self.valid[[q, p], :end]
            self.phys[row], self.phys[other], self.logical[p], self.logical[q] = q, p, other, row
        self.live -= 1

    def read(self, feeds: list[list[int] | None]):
        """Read ``feeds[r]`` into row ``r`` (None: a finished row): each row's last logits ``[rows, vocab]`` (a finished row's are junk).

        The same ops as ``lean._lean_step`` with a batch axis: the weights are read once per step
        for all rows. Finished rows are moved behind the live ones and left out (``_retire``).
        """
        import torch
        import torch.nn.functional as F

        for r, feed in enumerate(feeds):
            if feed is None and self.phys[r] < self.live:
                self._retire(r)
        wte, wpe, layers, (lnf_w, lnf_b, lnf_eps), head, heads = self.weights
        rows, end = self.live, self.end
        live_feeds = [feeds[self.logical[p]] for p in range(rows)]
        count = max(len(f) for f in live_feeds)
        self._reserve(end + count)
        tokens, positions, last = [], [], []
        for p, feed in enumerate(live_feeds):
            r = self.logical[p]
            start = self.pos[r]
            n = len(feed)
            tokens += feed + [0] * (count - n)
            positions += [*range(start, start + n), *[start + n - 1] * (count - n)]
            last.append(n - 1)
            self.slots[r].extend(range(end, end + n))
            self.pos[r] = start + n
        self.valid[:rows, end : end + count] = True
        for p, feed in enumerate(live_feeds):
            if len(feed) < count:  # padding after the row's words
                self.valid[p, end + len(feed) : end + count] = False
                self.dense = False
        stop = end + count
        device = wte.device
        x = wte[torch.tensor(tokens, device=device)] + wpe[torch.tensor(positions, device=device)]
        width = x.shape[1]
        head_dim = width // heads
        mask = None
        if not self.dense or count > 1:
            mask = self.valid[:rows, None, None, :stop]
            if count > 1:
                causal = torch.arange(stop, device=device)[None, :] <= torch.arange(end, stop, device=device)[:, None]
                mask = mask & causal[None, None]
        shape, layer_norm, sdpa = (width,), torch.layer_norm, F.scaled_dot_product_attention
        packed = self.packed if rows > 1 else None  # one row: MKL's addmm (a matrix-vector product) is faster
        if packed is None:
            addmm, layers_w, head_w = torch.addmm, layers, head
        else:  # oneDNN with weights packed for a few rows (MKL's addmm is ~2x slower at 4 rows than at 1 here)
            linear = torch.ops.mkldnn._linear_pointwise

            def addmm(bias, a, w):
                return linear(a, w, bias, "none", [], "")

            layers_w, head_w = packed
        for (ln1_w, ln1_b, eps1, qkv_w, qkv_b, scale, out_w, out_b, ln2_w, ln2_b, eps2, fc_w, fc_b, act, proj_w, proj_b), (kv, keys, values) in zip(
            layers_w, self.layers, strict=True
        ):
            y = addmm(qkv_b, layer_norm(x, shape, ln1_w, ln1_b, eps1), qkv_w)
            qkv = y.view(rows, count, 3, heads, head_dim).permute(2, 0, 3, 1, 4)  # [3, rows, heads, count, head_dim]
            kv[:, :rows, :, end:stop] = qkv[1:]
            a = sdpa(qkv[0], keys[:rows, :, :stop], values[:rows, :, :stop], attn_mask=mask, scale=scale)
            a = a.transpose(1, 2).reshape(rows * count, width)
            x = addmm(out_b, a, out_w).add_(x)
            x = addmm(proj_b, act(addmm(fc_b, layer_norm(x, shape, ln2_w, ln2_b, eps2), fc_w)), proj_w).add_(x)
        self.end = stop
        if count > 1:
            x = x.view(rows, count, width)[torch.arange(rows, device=device), torch.tensor(last, device=device)]
        x = layer_norm(x, shape, lnf_w, lnf_b, lnf_eps)
        logits = F.linear(x, head_w) if packed is None else addmm(None, x, head_w)
        if rows == self.rows:
            return logits if self.phys == self.logical else logits[self.phys]
        return logits[[p if p < rows else 0 for p in self.phys]]


def _pack(weights, rows: int):
    """The lean weights with every matrix packed by oneDNN for ``rows`` rows, or None where that is not available.

    Returns ``(layers, head)`` shaped like ``weights``' (the matrices replaced by packed ones, used
    with ``torch.ops.mkldnn._linear_pointwise``). On the CPUs measured, MKL's ``addmm`` costs 3x
    more at 4 rows than at 1 while oneDNN's packed product costs ~1.7x (benchmarks/README.md). CPU only.
    """
    import torch

    wte, _, layers, _, head, _ = weights
    if wte.device.type != "cpu" or wte.dtype != torch.float32 or not torch.backends.mkldnn.is_available():
        return None
    try:
        reorder = torch.ops.mkldnn._reorder_linear_weight
        pack = lambda w: reorder(w.t().contiguous(), rows)  # noqa: E731 - Conv1D stores [in, out]
        packed = [
            (a, b, c, pack(qkv_w), qkv_b, scale, pack(out_w), out_b, d, e, f, pack(fc_w), fc_b, act, pack(proj_w), proj_b)
            for (a, b, c, qkv_w, qkv_b, scale, out_w, out_b, d, e, f, fc_w, fc_b, act, proj_w, proj_b) in layers
        ]
        head_p = reorder(head.contiguous(), rows)
        probe = torch.ops.mkldnn._linear_pointwise(wte[:rows], packed[0][3], packed[0][4], "none", [], "")
        if not torch.allclose(probe, torch.addmm(layers[0][4], wte[:rows], layers[0][3]), atol=1e-4, rtol=1e-4):
            return None
    except (AttributeError, RuntimeError):
        return None
    return packed, head_p


class _ForwardRows:
    """The fallback for models the lean step cannot run: each row through the model's ``forward``, one at a time.

    One growing ``transformers`` cache per row; nothing is shared or batched (correct, not faster).
    """

    def __init__(self, model, rows: int) -> None:
        self.model, self.caches, self.lengths = model, [None] * rows, [0] * rows

    def rewind(self, row: int, keep: int) -> None:
        extra = self.lengths[row] - keep
        if extra > 0 and self.caches[row] is not None:
            self.caches[row].crop(-extra)
        self.lengths[row] = keep

    def read(self, feeds: list[list[int] | None]):
        import torch

        out = []
        for r, feed in enumerate(feeds):
            if feed is None:
                out.append(None)
                continue
            if self.caches[r] is None:
                self.caches[r] = _growing_cache()
            ids = torch.tensor(feed, device=self.model.device)
            result = self.model(input_ids=ids[None], cache=self.caches[r], use_cache=True, logits_to_keep=1)
            self.caches[r] = result.cache
            self.lengths[r] += len(feed)
            out.append(result.logits[0, -1].float().cpu())
        like = next(t for t in out if t is not None)
        return torch.stack([like.new_zeros(like.shape) if t is None else t for t in out])


def _shared(seqs: list[list[int]]) -> int:
    """Length of the longest prefix all ``seqs`` share."""
    n = min(len(s) for s in seqs)
    first = seqs[0]
    for i in range(n):
        if any(s[i] != first[i] for s in seqs[1:]):
            return i
    return n


def run_rows(engine, programs: list, sampling) -> list[tuple[object, float, int]]:
    """Run row programs (see the module docstring) as one batch: ``(result, log-likelihood, notes)`` per row.

    ``log-likelihood``: the sum, over every word the row drew, of its natural-log probability under
    the model (softmax of the logits at temperature 1, without the grammar mask, top-k or top-p);
    ``notes``: how many of those words are ``NOTE_ON``.
    """
    torch = engine.torch
    results, requests, todo = [None] * len(programs), [], []
    for r, program in enumerate(programs):
        try:
            requests.append(next(program))
            todo.append(r)
        except StopIteration as stop:  # nothing to draw (e.g. no new track)
            results[r] = (stop.value, 0.0, 0)
    if todo:
        with engine._lock, torch.inference_mode(), _one_cpu_thread(torch, engine.device):
            done = _run(engine, [programs[r] for r in todo], requests, sampling)
        for r, result in zip(todo, done, strict=True):
            results[r] = result
    return results


def _run(engine, programs: list, requests: list, sampling):
    torch = engine.torch
    rows = len(programs)
    words, table, context = engine.words, engine.table, engine.context
    note_ids = getattr(engine, "_note_ids", None)
    if note_ids is None:
        note_ids = engine._note_ids = frozenset(i for i, w in words.items() if V.parse_word(w).kind == V.NOTE_ON)

    def seeded(seed):
        gen = torch.Generator(device="cpu")
        gen.manual_seed(seed)
        return gen

    full = f"the song would exceed the model's context of {context} tokens; remove a track or use fewer bars"
    requests = list(requests)
    ids = [engine._encode(text) for text, _, _ in requests]
    for r in range(rows):
        while len(ids[r]) >= context:  # the program writes the window again, smaller (``window.write_span``)
            requests[r] = programs[r].throw(ContextFull(full))
            ids[r] = engine._encode(requests[r][0])
    states = [state for _, state, _ in requests]
    gens = [seeded(seed) for _, _, seed in requests]

    lean = _lean_weights(engine.model)
    logits = None
    if lean:
        same = all(row == ids[0] for row in ids)
        shared = len(ids[0]) if same else min(_shared(ids), min(len(row) for row in ids) - 1)
        start = None
        if shared > 0:  # read the shared prompt once, at batch 1 (from the engine's cache where it can)
            start, feed = engine._reuse(ids[0][:shared], _LeanCache)
            if start is None:
                start = _LeanCache()
            first = _lean_step(lean, start, feed)
            engine._cache = type(engine._cache)(ids[0][:shared], start)
            if same:
                if first.device.type != "cpu" or first.dtype != torch.float32:
                    first = first.float().cpu()
                logits = first[None].expand(rows, -1)
        stepper = _LeanRows(lean, rows, context, start)
    else:
        shared, stepper = 0, _ForwardRows(engine.model, rows)
    read = [row[:shared] for row in ids]  # the words each row's cache holds
    pending = [row[shared:] for row in ids]  # words to read before the row's next draw
    drawn: list[list[int]] = [[] for _ in range(rows)]
    results: list[object] = [None] * rows
    active = [True] * rows
    loglik, notes = [0.0] * rows, [0] * rows
    kept = [(0.0, 0)] * rows  # loglik and notes of the requests a row has finished (a request thrown back is not counted)

    def advance(r: int, send) -> None:
        """Send row ``r``'s drawn words (or throw ``ContextFull``) into its program and set up its next request."""
        while True:
            try:
                text, state, seed = programs[r].throw(send) if isinstance(send, ContextFull) else programs[r].send(send)
            except StopIteration as stop:
                results[r], active[r], pending[r] = stop.value, False, []
                return
            new = engine._encode(text)
            if len(new) < context:
                break
            send = ContextFull(full)
        states[r], drawn[r], gens[r] = state, [], seeded(seed)
        have = read[r]
        keep = _shared([have, new])
        if keep == len(new):  # nothing new to read: read the last word again for its logits
            keep -= 1
        if keep < len(have):
            stepper.rewind(r, keep)
            read[r] = have[:keep]
        pending[r] = new[keep:]
    n_logits = None
    halt = _stop_event()

    while True:
        _check_stop(halt)
        if logits is not None:
            if logits.device.type != "cpu" or logits.dtype != torch.float32:
                logits = logits.float().cpu()
            n_logits = logits.shape[-1]
            for r in range(rows):
                if active[r] and not pending[r] and len(read[r]) >= context:  # out of context: the program writes the window again, smaller
                    loglik[r], notes[r] = kept[r]
                    advance(r, ContextFull(full))
            ready = [r for r in range(rows) if active[r] and not pending[r]]
            sampled, masks, tokens = [], [], {}
            for r in ready:
                mask = allowed(states[r], table)[:n_logits]
                if np.count_nonzero(mask) == 1:  # forced: the random numbers a draw uses are drawn all the same
                    torch.empty(n_logits).exponential_(1, generator=gens[r])
                    tokens[r] = int(mask.argmax())
                else:
                    sampled.append(r)
                    masks.append(mask)
            if sampled:
                chosen = _draw_rows(logits[sampled], ~np.stack(masks), sampling, [gens[r] for r in sampled])
                tokens.update(zip(sampled, chosen, strict=True))
            if ready:
                probs = torch.log_softmax(logits, -1)[ready, [tokens[r] for r in ready]].tolist()
            for j, r in enumerate(ready):
                token = tokens[r]
                loglik[r] += probs[j]
                notes[r] += token in note_ids
                states[r].step(words[token])
                drawn[r].append(token)
                pending[r] = [token]
                if states[r].phase != DONE:
                    continue
                kept[r] = (loglik[r], notes[r])
                done = [words[i] for i in drawn[r]]
                _report_progress(done)
                advance(r, done)
        if not any(active):
            break
        longest = max(len(p) for p in pending)
        count = longest if longest > _READ_AT_ONCE else 1
        feeds: list[list[int] | None] = []
        for r in range(rows):
            if not active[r]:
                feeds.append(None)
                continue
            feed, pending[r] = pending[r][:count], pending[r][count:]
            read[r].extend(feed)
            feeds.append(feed)
        logits = stepper.read(feeds)
    return [(results[r], loglik[r], notes[r]) for r in range(rows)]
