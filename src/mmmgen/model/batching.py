"""How training windows become forward passes (``--batching``), measured in ``benchmarks/bench_train.py``.

``single`` (one window per pass, steps accumulate the tutorial's random batches), ``buckets``
(windows of similar length side by side), ``blocks`` (packed end to end, attention kept inside
each window) and ``windows`` (the tutorial's padded batches); the tokenized splits with their
statistics (``build_datasets``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmmgen.config import TrainConfig
from mmmgen.config.train import BUCKETS_PER_STEP_MAX, CPU_PASS_TOKENS
from mmmgen.errors import MMMGenError

log = logging.getLogger(__name__)

# --batching auto on a CPU: buckets when training windows average fewer words than this, else single.
# One training step of the 4 x 256 model both ways (benchmarks/results/short_windows.md, quiet machine):
# buckets 3.1x faster at 48-word windows, 2.2x at 96, 1.25x at 384, even at 768 and 1,536.
SHORT_WINDOW_WORDS = 512
GROUP_NAMES = {"single": "forward passes of one window each", "buckets": "length buckets", "blocks": "packed blocks",
               "windows": "one-window examples"}


class TrainError(MMMGenError):
    """Training input that cannot work (run folder in use, windows far longer than the context)."""



def round_up(n: int, multiple: int) -> int:
    """``n`` rounded up to a multiple of ``multiple`` (padded widths)."""
    return -(-n // multiple) * multiple


# --- packing -----------------------------------------------------------------------------------
def pack_windows(lengths, capacity: int, seed: int = 0) -> list[list[int]]:
    """Group windows into blocks of at most ``capacity`` tokens without splitting any.

    Greedy largest-first: each block takes the longest window left, then keeps adding the longest
    window that still fits. Windows longer than ``capacity`` are cut to it (one per block).
    ``seed`` shuffles windows of equal length. Returns window indices per block.
    """
    lengths = np.minimum(np.asarray(lengths, dtype=np.int64), capacity)
    rng = np.random.default_rng(seed)
    stacks: list[list[int]] = [[] for _ in range(capacity + 1)]
    for i in rng.permutation(len(lengths)):
        stacks[lengths[i]].append(int(i))
    count = np.array([len(s) for s in stacks])
    count[0] = 0
    blocks, left, top = [], int(count.sum()), capacity
    while left:
        while count[top] == 0:
            top -= 1
        block, space = [stacks[top].pop()], capacity - top
        count[top] -= 1
        left -= 1
        while space > 0 and left:
            fits = np.flatnonzero(count[1 : space + 1])
            if not len(fits):
                break
            size = int(fits[-1]) + 1
            block.append(stacks[size].pop())
            count[size] -= 1
            left -= 1
            space -= size
        blocks.append(block)
    return blocks


def bucket_windows(lengths, capacity: int, context: int, seed: int = 0, multiple: int = 8) -> list[list[int]]:
    """Group windows of similar length so that each group, one row per window padded to its
    longest (rounded up to ``multiple``), holds at most ``capacity`` tokens.

    Windows are sorted by length (``seed`` shuffles equal lengths, so a group draws from all
    pieces of its length) and cut into groups in that order; windows longer than ``context`` are
    cut to it. Returns window indices per group (a group is one training step's rows per process).
    """
    lengths = np.minimum(np.asarray(lengths, dtype=np.int64), context)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(lengths)), lengths))
    groups, group = [], []
    for i in order:
        if lengths[i] == 0:
            continue
        width = round_up(int(lengths[i]), multiple)
        if group and (len(group) + 1) * width > capacity:
            groups.append(group)
            group = []
        group.append(int(i))
    if group:
        groups.append(group)
    return groups


def rows_padding_fraction(lengths, groups: list[list[int]], context: int, multiple: int = 8) -> float:
    """Share of padding when each group becomes rows padded to its longest window (``RowCollator``)."""
    lengths = np.minimum(np.asarray(lengths, dtype=np.int64), context)
    used = padded = 0
    for g in groups:
        chunk = lengths[g]
        used += int(chunk.sum())
        padded += len(g) * round_up(int(chunk.max()), multiple)
    return 1.0 - used / max(1, padded)


def padding_fraction(lengths, blocks: list[list[int]], capacity: int) -> float:
    """Share of block positions that hold padding."""
    used = sum(min(int(lengths[i]), capacity) for b in blocks for i in b)
    return 1.0 - used / max(1, len(blocks) * capacity)


def batch_padding_fraction(lengths, batch: int, seed: int = 0) -> float:
    """Padding share of one shuffled epoch of one-window examples, each batch padded to its longest."""
    order = np.random.default_rng(seed).permutation(len(lengths))
    used = padded = 0
    for s in range(0, len(order), batch):
        chunk = np.asarray(lengths)[order[s : s + batch]]
        used += int(chunk.sum())
        padded += int(chunk.max()) * len(chunk)
    return 1 - used / max(1, padded)


class PackedBlocks:
    """A torch-style dataset of blocks; item ``i`` is ``{"windows": [token id arrays]}``."""

    def __init__(self, tokens, blocks: list[list[int]], capacity: int):
        self.tokens = tokens.with_format("numpy", columns=["input_ids"])
        self.blocks = blocks
        self.capacity = capacity

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> dict:
        rows = self.tokens[self.blocks[i]]["input_ids"]
        return {"windows": [np.asarray(w)[: self.capacity] for w in rows]}


@dataclass
class PackedCollator:
    """Blocks -> ``input_ids``, ``labels`` and per-window ``position_ids`` (padded to a multiple of 8).

    With ``reset_positions`` (the default) each window starts at position 0, so attention stays
    inside windows; without it positions run on and attention crosses windows (run_clm style).
    transformers derives the block-diagonal mask from the position ids only when the forward
    pass gets no attention mask and no cache: call the model with ``use_cache=False`` (Trainer
    does during training).
    """

    pad_id: int
    reset_positions: bool = True
    multiple: int = 8

    def __call__(self, items: list[dict]) -> dict:
        import torch

        sizes = [sum(len(w) for w in item["windows"]) for item in items]
        width = round_up(max(sizes), self.multiple)
        ids = torch.full((len(items), width), self.pad_id, dtype=torch.long)
        labels = torch.full_like(ids, -100)
        pos = torch.zeros_like(ids)
        for b, item in enumerate(items):
            off = 0
            for w in item["windows"]:
                n = len(w)
                t = torch.as_tensor(w, dtype=torch.long)
                ids[b, off : off + n] = t
                labels[b, off + 1 : off + n] = t[1:]  # a window's first token is not predicted
                pos[b, off : off + n] = torch.arange(n)
                off += n
            pos[b, off:] = torch.arange(width - off)  # padding forms its own (ignored) segment
            if not self.reset_positions:
                pos[b] = torch.arange(width)
        return {"input_ids": ids, "labels": labels, "position_ids": pos}


@dataclass
class RowCollator:
    """Groups -> one row per window (``input_ids``, ``labels``, ``position_ids``), right-padded to
    the longest window (a multiple of 8).

    Padding only follows each window's last word, where the causal mask already hides it from
    every real word: no attention mask is needed, and transformers keeps the fused causal kernel
    (position ids are plain ``0..n``). Items of a batch are stacked, so give it one group per step
    (``bucket_windows`` sizes groups to a step).
    """

    pad_id: int
    multiple: int = 8

    def __call__(self, items: list[dict]) -> dict:
        import torch

        windows = [w for item in items for w in item["windows"]]
        width = round_up(max(len(w) for w in windows), self.multiple)
        ids = torch.full((len(windows), width), self.pad_id, dtype=torch.long)
        labels = torch.full_like(ids, -100)
        for r, w in enumerate(windows):
            t = torch.as_tensor(w, dtype=torch.long)
            ids[r, : len(t)] = t
            labels[r, : len(t)] = t  # the model shifts: a row's first token is never a target
        pos = torch.arange(width).repeat(len(windows), 1)  # a real tensor: an expanded view cannot be pinned (GPU)
        return {"input_ids": ids, "labels": labels, "position_ids": pos}


def make_collator(batching: str, pad_id: int, multiple: int = 1):
    """The collator of a ``--batching`` way (``single`` evaluates on buckets: ``RowCollator`` too).

    ``multiple``: ``single`` pads each window to a multiple of it (1: no padding; ``speed.shape_multiple``).
    """
    if batching == "single":
        return RowCollator(pad_id, multiple=multiple)
    return RowCollator(pad_id) if batching == "buckets" else PackedCollator(pad_id)


def resolve_auto_batching(cfg: TrainConfig, report: dict) -> str:
    """``--batching auto`` on a CPU (a GPU resolves it in the config): ``single`` for long windows,
    ``buckets`` when the prepared training windows average under ``SHORT_WINDOW_WORDS`` words (a
    pass of one short window is mostly per-pass cost). ``report``: the dataset's ``report.json``.
    Sets and returns ``cfg.batching``; any other value is left as it is. With buckets, an unset
    ``--buckets-per-step`` is set to ``bucket_count``'s choice, so the run folder records it."""
    if cfg.batching == "auto":
        words, windows = report.get("tokens", {}).get("train"), report.get("windows", {}).get("train")
        mean = words / windows if words and windows else math.inf
        cfg.batching = "buckets" if mean < SHORT_WINDOW_WORDS else "single"
        log.info("--batching auto: %s (training windows average %.0f words; buckets under %d)",
                 cfg.batching, mean, SHORT_WINDOW_WORDS)
    if cfg.batching == "buckets" and cfg.buckets_per_step is None:
        cfg.buckets_per_step = bucket_count(cfg)  # recorded in the run's train_config.yaml
        log.info("--buckets-per-step %d (passes of %d tokens)", cfg.buckets_per_step,
                 cfg.batch_size * cfg.context_length // cfg.buckets_per_step)
    return cfg.batching


def windows_per_step(cfg: TrainConfig, mean_length: float) -> int:
    """``--batching single``: windows a step accumulates over all processes (about batch x context tokens)."""
    return max(1, round(cfg.batch_size * cfg.context_length / max(mean_length, 1.0)))


def passes_per_step(cfg: TrainConfig, train_stats: dict, world: int = 1) -> int:
    """Forward passes a process accumulates into one step (before ``--gradient-accumulation-steps``):
    its share of ``windows_per_step`` (single) or of ``buckets_per_step`` (buckets; each bucket holds about
    batch x context / buckets_per_step tokens whatever the processes, so a step holds the same tokens), else 1."""
    if cfg.batching == "single":
        return -(-train_stats["windows_per_step"] // world)
    return bucket_passes(cfg, world) if cfg.batching == "buckets" else 1


def bucket_passes(cfg: TrainConfig, world: int = 1) -> int:
    """``--batching buckets``: buckets a process takes a step (its share of ``bucket_count``, at least one)."""
    return -(-bucket_count(cfg) // world)


def bucket_count(cfg: TrainConfig) -> int:
    """Buckets a step accumulates: ``--buckets-per-step``, or when unset as many as keep a pass at
    ``CPU_PASS_TOKENS`` or more (at most ``BUCKETS_PER_STEP_MAX``)."""
    if cfg.buckets_per_step is not None:
        return cfg.buckets_per_step
    return max(1, min(BUCKETS_PER_STEP_MAX, cfg.batch_size * cfg.context_length // CPU_PASS_TOKENS))


# --- data --------------------------------------------------------------------------------------
@dataclass
class TrainData:
    train: PackedBlocks
    test: PackedBlocks | None
    stats: dict = field(default_factory=dict)


def _fingerprint(*parts: str) -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def tokenize_split(split, tokenizer, cache_file: str | Path | None = None):
    """Add ``input_ids``, ``length`` and ``n_unk`` (words the tokenizer does not know) to a split."""
    from datasets import Features, List, Value

    unk = tokenizer.unk_token_id

    def encode(batch):
        ids = tokenizer(batch["text"], add_special_tokens=False, return_attention_mask=False)["input_ids"]
        return {"input_ids": ids, "length": [len(x) for x in ids], "n_unk": [x.count(unk) for x in ids]}

    features = Features({"input_ids": List(Value("int32")), "length": Value("int32"), "n_unk": Value("int32")})
    return split.map(
        encode, batched=True, remove_columns=split.column_names, features=features,
        cache_file_name=str(cache_file) if cache_file else None, keep_in_memory=cache_file is None,
        desc="tokenizing",
    )


def _unknown_words(texts: list[str], tokenizer, limit: int = 5) -> list[str]:
    known, found = tokenizer.get_vocab(), []
    for text in texts:
        found += [w for w in dict.fromkeys(text.split()) if w not in known and w not in found]
        if len(found) >= limit:
            break
    return found[:limit]


def build_datasets(cfg: TrainConfig, tokenizer, cache_dir: str | Path | None = None, world: int = 1) -> TrainData:
    """Tokenize, check and group both splits of a prepared dataset (``cfg.batching``).

    ``world``: data-parallel processes (an evaluation pass holds one process's share of a step; see ``passes_per_step``).

    Raises:
        TokenizerError: some training words map to ``[UNK]``.
        TrainError: more than ``cfg.max_cut`` of the windows are longer than the context.
    """
    from datasets import load_from_disk

    from mmmgen.model.tokenizer import TokenizerError

    dsd = load_from_disk(str(cfg.dataset))
    train_split = dsd["train"]
    mixed = None
    if cfg.mix:  # the data's mix: windows per collection per epoch
        from mmmgen.data.mix import format_mix, mix_split

        train_split, mixed = mix_split(train_split, cfg.mix, cfg.seed)
        log.info("mix %s: %s", cfg.mix, format_mix(mixed))
    if cfg.max_train_windows:
        train_split = train_split.select(range(min(cfg.max_train_windows, len(train_split))))
    if len(train_split) == 0:
        msg = f"the dataset {cfg.dataset} has no training windows"
        raise TrainError(msg)
    vocab_hash = _fingerprint(json.dumps(tokenizer.get_vocab(), sort_keys=True))
    out, stats = {}, {}
    test_split = dsd.get("test")
    if test_split is not None and cfg.max_eval_windows and cfg.max_eval_windows < len(test_split):
        test_split = test_split.select(np.unique(np.linspace(0, len(test_split) - 1, cfg.max_eval_windows).astype(int)))
    for name, split in (("train", train_split), ("test", test_split)):
        if split is None or len(split) == 0:
            continue
        cache = Path(cache_dir) / f"{name}-{_fingerprint(split._fingerprint, vocab_hash)}.arrow" if cache_dir else None
        tokens = tokenize_split(split, tokenizer, cache)
        n_unk = int(np.sum(tokens["n_unk"]))
        if n_unk:
            bad = [i for i, n in enumerate(tokens["n_unk"][:10_000]) if n][:20]
            words = _unknown_words(split.select(bad)["text"], tokenizer)
            msg = (f"tokenizer {cfg.tokenizer} does not cover the dataset: {n_unk:,} words of the {name} split "
                   f"map to [UNK] (e.g. {', '.join(words)}); rebuild it with `mmmgen tokenizer {cfg.dataset} OUT_DIR`")
            raise TokenizerError(msg)
        lengths = np.asarray(tokens["length"])
        n_cut = int(np.sum(lengths > cfg.context_length))
        if name == "train" and n_cut > cfg.max_cut * len(lengths):
            msg = (f"{n_cut:,} of {len(lengths):,} training windows ({n_cut / len(lengths):.1%}) are longer than "
                   f"--context-length {cfg.context_length} (longest {lengths.max():,} tokens) and would be cut; "
                   f"raise --context-length or allow it with --max-cut {math.ceil(100 * n_cut / len(lengths)) / 100:g}")
            raise TrainError(msg)
        if n_cut:
            log.warning("%d %s windows are longer than %d tokens and are cut", n_cut, name, cfg.context_length)
        if cfg.batching == "single" and name == "train":
            blocks = [[i] for i in np.flatnonzero(lengths)]
            padding = 0.0
        elif cfg.batching in ("single", "buckets"):  # single evaluates on buckets: whole steps at once
            if cfg.batching == "buckets" and name == "train":  # a step: buckets_per_step buckets over all processes
                # (at least one per process: with fewer buckets than processes each holds a process's share)
                capacity = cfg.batch_size * cfg.context_length // (bucket_passes(cfg, world) * world)
            else:  # an evaluation pass: a process's share of a step
                capacity = max(1, cfg.batch_size // world) * cfg.context_length
            blocks = bucket_windows(lengths, capacity, cfg.context_length, cfg.seed)
            padding = rows_padding_fraction(lengths, blocks, cfg.context_length)
        elif cfg.batching == "blocks":
            blocks = pack_windows(lengths, cfg.context_length, cfg.seed)
            padding = padding_fraction(lengths, blocks, cfg.context_length)
        else:  # the tutorial's way: one window per example, batches padded to their longest
            blocks = [[i] for i in range(len(lengths))]
            padding = batch_padding_fraction(np.minimum(lengths, cfg.context_length), cfg.batch_size, cfg.seed)
        out[name] = PackedBlocks(tokens, blocks, cfg.context_length)
        stats[name] = {
            "windows": len(lengths), "tokens": int(np.minimum(lengths, cfg.context_length).sum()),
            "blocks": len(blocks), "cut_windows": n_cut, "batching": cfg.batching,
            "padding_fraction": round(padding, 4),
        }
        if cfg.batching == "single" and name == "train":
            stats[name]["windows_per_step"] = windows_per_step(cfg, stats[name]["tokens"] / len(lengths))
    if mixed:
        stats["train"]["mix"] = mixed
    return TrainData(out["train"], out.get("test"), stats)


