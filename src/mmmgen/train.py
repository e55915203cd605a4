"""GPT-2 training on MMM windows: ``train(cfg) -> run_dir``.

No compute goes to padding (``--batching``, measured in ``benchmarks/bench_train.py``):

* ``single`` (default): one window per forward pass, and a step accumulates the gradients of
  about ``batch_size x context_length`` tokens of random windows (``windows_per_step``): the
  tutorial's random batches without their padding, attention on the fused causal kernel over
  the window's own length. Transformers weighs the accumulated losses by their tokens, so a step
  computes exactly the loss of the tutorial's batch of the same windows.
* ``buckets`` (``bucket_windows``): windows of similar length side by side, one row each,
  right-padded to the longest of them (a few tokens). Padding only follows a window's last word,
  so the causal mask already hides it: no attention mask. A step accumulates
  ``buckets_per_step`` buckets drawn at random (length-sorted steps learn worse early on).
  Bigger matrices than ``single``: for GPUs.
* ``blocks`` (``pack_windows``): whole windows packed end to end into ``context_length`` rows.
  Windows are independent pieces, so attention does NOT cross them: each window restarts its
  position ids at 0 and transformers turns the resets into a block-diagonal causal mask (an
  explicit mask, slower than the fused kernel).
* ``windows``: the tutorial's one window per example, each batch padded to its longest.

Every way trains each window exactly as it would alone (as in the tutorial): the same loss,
the first token (``PIECE_START``) not predicted.

The run folder explains itself: ``train_config.yaml``, ``command.txt``, ``versions.json``, the
tokenizer, ``mmmgen.json`` (codec settings for generation), ``checkpoint-N/`` (safetensors),
``logs/`` (TensorBoard), ``samples/`` (MIDI written at each evaluation), the final model,
``metrics.json`` and a model card ``README.md``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import platform
import re
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmmgen import vocab as V
from mmmgen.config import TrainConfig
from mmmgen.errors import MMMGenError

log = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
CLOCK_NAME = "mmmgen_clock.json"
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
        pos = torch.arange(width).expand(len(windows), -1)
        return {"input_ids": ids, "labels": labels, "position_ids": pos}


def make_collator(batching: str, pad_id: int):
    """The collator of a ``--batching`` way (``single`` evaluates on buckets: ``RowCollator`` too)."""
    if batching == "single":
        return RowCollator(pad_id, multiple=1)  # one window: no padding at all
    return RowCollator(pad_id) if batching == "buckets" else PackedCollator(pad_id)


def windows_per_step(cfg: TrainConfig, mean_length: float) -> int:
    """``--batching single``: windows a step accumulates over all processes (about batch x context tokens)."""
    return max(1, round(cfg.batch_size * cfg.context_length / max(mean_length, 1.0)))


def passes_per_step(cfg: TrainConfig, train_stats: dict, world: int = 1) -> int:
    """Forward passes a process accumulates into one step (before ``--gradient-accumulation-steps``):
    its share of ``windows_per_step`` (single), ``buckets_per_step`` (buckets), else 1."""
    if cfg.batching == "single":
        return -(-train_stats["windows_per_step"] // world)
    return cfg.buckets_per_step if cfg.batching == "buckets" else 1


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

    ``world``: data-parallel processes (a bucket holds one process's share of a step).

    Raises:
        TokenizerError: some training words map to ``[UNK]``.
        TrainError: more than ``cfg.max_cut`` of the windows are longer than the context.
    """
    from datasets import load_from_disk

    from mmmgen.tokenizer import TokenizerError

    dsd = load_from_disk(str(cfg.dataset))
    train_split = dsd["train"]
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
            per_step = cfg.buckets_per_step if cfg.batching == "buckets" and name == "train" else 1
            capacity = max(1, cfg.batch_size // world) * cfg.context_length // per_step
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
    return TrainData(out["train"], out.get("test"), stats)


# --- evaluation --------------------------------------------------------------------------------
def evaluate_blocks(model, dataset, collator, batch_size: int, note_ids, rank: int = 0, world: int = 1,
                    autocast=contextlib.nullcontext):
    """Summed NLL, predicted tokens and notes (``NOTE_ON`` words) over this process's share of blocks.

    Returns a float64 tensor ``[nll, tokens, notes]`` (sum it across processes for the whole split).
    """
    import torch
    import torch.nn.functional as F

    device = next(model.parameters()).device
    notes = torch.as_tensor(sorted(note_ids), device=device)
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    mine = list(range(rank, len(dataset), world))
    with torch.no_grad():
        for start in range(0, len(mine), batch_size):
            batch = collator([dataset[i] for i in mine[start : start + batch_size]])
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast():
                logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
            target = batch["labels"][:, 1:]
            nll = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), target, ignore_index=-100, reduction="sum")
            real = batch["input_ids"] != collator.pad_id
            sums += torch.stack([nll.double(), (target != -100).sum().double(),
                                 (torch.isin(batch["input_ids"], notes) & real).sum().double()])
    return sums


def loss_metrics(sums, prefix: str = "eval") -> dict:
    """Token loss, perplexity and loss per note from ``evaluate_blocks`` sums."""
    nll, tokens, notes = (float(x) for x in sums)
    loss = nll / max(tokens, 1.0)
    try:
        ppl = math.exp(loss)
    except OverflowError:
        ppl = float("inf")
    return {f"{prefix}_loss": loss, f"{prefix}_perplexity": ppl,
            f"{prefix}_loss_per_note": nll / notes if notes else float("nan"), f"{prefix}_notes": int(notes)}


def note_on_ids(tokenizer) -> list[int]:
    return [i for w, i in tokenizer.get_vocab().items() if V.parse_word(w).kind == V.NOTE_ON]


def time_schedule(progress: float, warmup: float) -> float:
    """Learning-rate factor at ``progress`` (share of the time budget used): linear warmup, cosine to 0."""
    if progress < warmup:
        return progress / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warmup) / max(1e-9, 1 - warmup))))


def _make_trainer_class():
    """``Trainer`` whose evaluation reports loss, perplexity and loss per note over whole windows."""
    from transformers import Trainer
    from transformers.trainer_utils import EvalLoopOutput

    class MMMTrainer(Trainer):
        note_ids: tuple[int, ...] = ()
        budget: tuple | None = None  # (warmup ratio, ClockCallback with budget_s): learning rate over wall time

        def create_scheduler(self, num_training_steps: int, optimizer=None):
            if self.budget is None:
                return super().create_scheduler(num_training_steps, optimizer)
            from torch.optim.lr_scheduler import LambdaLR

            warmup, clock = self.budget
            if self.lr_scheduler is None:
                self.lr_scheduler = LambdaLR(optimizer or self.optimizer, lambda _: time_schedule(clock.total / clock.budget_s, warmup))
            return self.lr_scheduler

        def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None,
                            metric_key_prefix="eval"):
            model = self.accelerator.unwrap_model(self.model)
            was_training = model.training
            model.eval()
            sums = evaluate_blocks(model, self.eval_dataset, self.data_collator, self.args.per_device_eval_batch_size,
                                   self.note_ids, self.args.process_index, self.args.world_size, self.accelerator.autocast)
            model.train(was_training)
            if self.args.world_size > 1:
                sums = self.accelerator.reduce(sums, reduction="sum")
            metrics = loss_metrics(sums, metric_key_prefix)
            return EvalLoopOutput(predictions=None, label_ids=None, metrics=metrics, num_samples=len(self.eval_dataset))

    return MMMTrainer


# --- samples at each evaluation ----------------------------------------------------------------
def sample_piece(model, tokenizer, genre: str = V.OTHER_GENRE, time_signature: str = "4_4", tracks: int = 2,
                 max_tokens: int = 512, temperature: float = 0.75, seed: int = 0) -> str:
    """A short multitrack piece, one track at a time as in the tutorial (``TRACK_END`` ends a call)."""
    import torch

    text = f"{V.PIECE_START} {V.TIME_SIGNATURE}={time_signature} {V.genre(genre)} {V.TRACK_START}"
    end_id = tokenizer.convert_tokens_to_ids(V.TRACK_END)
    budget = max(8, max_tokens // max(tracks, 1))
    room = model.config.n_positions - budget
    devices = [model.device] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        for t in range(tracks):
            ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"][:, -room:].to(model.device)
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=budget, do_sample=True,
                                 temperature=temperature, eos_token_id=end_id, pad_token_id=tokenizer.pad_token_id,
                                 use_cache=True)
            new = tokenizer.decode(out[0, ids.shape[1] :].tolist(), skip_special_tokens=True).strip()
            text = f"{text} {new}".strip()
            if not text.endswith(V.TRACK_END):
                text += f" {V.TRACK_END}"
            if t + 1 < tracks:
                text += f" {V.TRACK_START}"
    return text


def _make_callbacks():
    """``SampleCallback`` (a piece at each evaluation), ``ClockCallback`` (training time over resumes, the
    ``--max-minutes`` stop) and ``TimeProgressCallback`` (a progress bar over the time budget)."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import ProgressCallback

    class SampleCallback(TrainerCallback):
        """At each evaluation, write a sample to ``RUN/samples/step-N.{txt,mid,wav}`` and log it."""

        def __init__(self, run_dir: Path, tokenizer, settings: dict, cfg: TrainConfig, writer=None):
            self.dir, self.tokenizer, self.settings, self.cfg, self.writer = run_dir / "samples", tokenizer, settings, cfg, writer
            self.audio = cfg.sample_audio

        def on_evaluate(self, args, state, control, model=None, **kwargs):
            if not state.is_world_process_zero or self.cfg.sample_tracks < 1 or model is None:
                return
            genres = self.settings.get("genres") or {V.OTHER_GENRE: 1}
            was_training = model.training
            model.eval()
            try:
                text = sample_piece(model, self.tokenizer, max(genres, key=genres.get), tracks=self.cfg.sample_tracks,
                                    max_tokens=self.cfg.sample_max_tokens, temperature=self.cfg.sample_temperature,
                                    seed=self.cfg.seed + state.global_step)
            finally:
                model.train(was_training)
            stem = self.dir / f"step-{state.global_step:07d}"
            stem.parent.mkdir(parents=True, exist_ok=True)
            stem.with_suffix(".txt").write_text(text + "\n")
            if self.writer is not None:
                self.writer.add_text("sample", text, state.global_step)
            try:
                from mmmgen.codec import text_to_score
                from mmmgen.render import write_midi

                score = text_to_score(text, grid=self.settings["codec"].get("grid", 12))
                write_midi(score, stem.with_suffix(".mid"))
            except Exception as exc:  # an unplayable early sample must not stop training
                log.warning("sample at step %d not written as MIDI: %s", state.global_step, exc)
                return
            if self.audio:
                self._audio(score, stem, state.global_step, args)

        def _audio(self, score, stem: Path, step: int, args) -> None:
            try:
                from mmmgen import audio as A

                wave, rate, _ = A.synthesize(score, sample_rate=22050)
                wave = A.finish_audio(wave, rate, min_seconds=A.score_end_seconds(score))
                A.write_wav(stem.with_suffix(".wav"), wave, rate)
            except Exception as exc:  # no SoundFont, no synthesizer: keep training, say it once
                log.warning("samples are not rendered as audio: %s", exc)
                self.audio = False
                return
            mono = wave.mean(axis=0)
            if self.writer is not None:
                import torch

                self.writer.add_audio("sample", torch.from_numpy(mono)[None], step, sample_rate=rate)
            if "wandb" in (args.report_to or []):
                import wandb

                if wandb.run is not None:
                    wandb.log({"sample": wandb.Audio(mono, sample_rate=rate)}, step=step)

    class ClockCallback(TrainerCallback):
        """Training seconds summed over every session of a run, kept in each checkpoint."""

        def __init__(self, resume_from: Path | None, budget_s: float | None = None):
            self.before, self.budget_s = 0.0, budget_s
            if resume_from is not None:
                with contextlib.suppress(OSError, ValueError, KeyError):
                    self.before = json.loads((resume_from / CLOCK_NAME).read_text())["train_seconds"]
            self.start = time.time()

        @property
        def total(self) -> float:
            return self.before + time.time() - self.start

        def on_step_end(self, args, state, control, **kwargs):
            if self.budget_s is not None and self.total >= self.budget_s:
                log.info("time budget of %.1f min reached at step %d", self.budget_s / 60, state.global_step)
                control.should_training_stop = True

        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                (folder / CLOCK_NAME).write_text(json.dumps({"train_seconds": round(self.total, 3)}))

    class TimeProgressCallback(ProgressCallback):
        """With ``--max-minutes``: the progress bar and its ETA count training time, not steps."""

        def __init__(self, clock):
            super().__init__()
            self.clock = clock

        def on_train_begin(self, args, state, control, **kwargs):
            from tqdm.auto import tqdm

            if state.is_world_process_zero:
                self.training_bar = tqdm(total=round(self.clock.budget_s), unit="s", dynamic_ncols=True, desc="training",
                                         initial=min(round(self.clock.total), round(self.clock.budget_s)))
            self.current_step = 0

        def on_step_end(self, args, state, control, **kwargs):
            if state.is_world_process_zero and self.training_bar is not None:
                self.training_bar.n = min(round(self.clock.total), self.training_bar.total)
                self.training_bar.set_postfix(step=state.global_step, refresh=False)
                self.training_bar.refresh()

    return SampleCallback, ClockCallback, TimeProgressCallback


# --- checkpoints -------------------------------------------------------------------------------
def checkpoint_is_complete(path: Path) -> bool:
    """True when a checkpoint was saved to the end: Trainer writes ``trainer_state.json`` last."""
    try:
        json.loads((path / "trainer_state.json").read_text())
        weights = path / "model.safetensors"
        with open(weights, "rb") as f:  # the header says how long the file must be
            header = int.from_bytes(f.read(8), "little")
            meta = json.loads(f.read(header))
        end = max(v["data_offsets"][1] for k, v in meta.items() if k != "__metadata__")
        return weights.stat().st_size >= 8 + header + end and (path / "optimizer.pt").is_file()
    except (OSError, ValueError, KeyError):
        return False


def checkpoints(run_dir: Path) -> list[Path]:
    """``checkpoint-N`` folders of a run, oldest first."""
    found = [p for p in run_dir.glob("checkpoint-*") if p.is_dir() and CHECKPOINT_RE.match(p.name)]
    return sorted(found, key=lambda p: int(CHECKPOINT_RE.match(p.name).group(1)))


def resume_checkpoint(run_dir: Path, remove_incomplete: bool = True) -> Path | None:
    """The newest complete checkpoint; newer incomplete ones (a kill while saving) are removed."""
    for path in reversed(checkpoints(run_dir)):
        if checkpoint_is_complete(path):
            return path
        log.warning("checkpoint %s is incomplete (interrupted while saving); using the one before", path.name)
        if remove_incomplete:
            shutil.rmtree(path, ignore_errors=True)
    return None


# --- run folder --------------------------------------------------------------------------------
def library_versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("mmmgen", "torch", "transformers", "tokenizers", "datasets", "accelerate", "safetensors", "symusic"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[name] = md.version(name)
    return out


def _write_run_files(run: Path, cfg: TrainConfig, tokenizer, settings: dict, stats: dict) -> None:
    import yaml

    from mmmgen.model import save_settings

    run.mkdir(parents=True, exist_ok=True)
    (run / "train_config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    with open(run / "command.txt", "a") as f:
        f.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}\n{shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])}\n")
    (run / "versions.json").write_text(json.dumps(library_versions(), indent=2))
    (run / "data_stats.json").write_text(json.dumps(stats, indent=2))
    tokenizer.model_max_length = cfg.context_length  # the model's positions, for plain transformers users
    tokenizer.save_pretrained(str(run))
    save_settings(run, settings)


def _model_card(cfg: TrainConfig, metrics: dict, stats: dict, settings: dict) -> str:
    rows = "\n".join(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items())
    hours = metrics.get("train_runtime_total", metrics.get("train_runtime", 0)) / 3600
    return f"""# MMM GPT-2 ({cfg.n_layer} layers x {cfg.n_embd}, {metrics.get('params', 0):,} parameters)

A GPT-2 trained from scratch by `mmmgen train` on MMM text (multitrack windows of
{settings['codec'].get('bars')} bars, grid {settings['codec'].get('grid')} steps per quarter).

## Data
- dataset: `{settings['dataset']}`
- train: {stats['train']['windows']:,} windows, {stats['train']['tokens']:,} tokens in {stats['train']['blocks']:,} {GROUP_NAMES[cfg.batching]} (padding {stats['train']['padding_fraction']:.1%})
- test: {stats.get('test', {}).get('windows', 0):,} windows
- genres: {', '.join(settings.get('genre_labels', []))}

## Model and training
- n_layer {cfg.n_layer}, n_head {cfg.n_head}, n_embd {cfg.n_embd}, context {cfg.context_length} (preset `{cfg.preset}`)
- {metrics.get('steps', 0):,} steps, {metrics.get('epochs', 0):.2f} epochs, batch {cfg.batch_size}{f" ({stats['train']['windows_per_step']} windows a step)" if 'windows_per_step' in stats['train'] else ''} x {cfg.gradient_accumulation_steps}, lr {cfg.learning_rate:g} cosine, warmup {cfg.warmup_ratio:g}, weight decay {cfg.weight_decay:g}, precision {metrics.get('precision')}
- {metrics.get('train_tokens', 0):,} tokens trained on in {hours:.2f} h of training

## Metrics
| metric | value |
|---|---|
{rows}

## Use
```python
from mmmgen.model import load_run
model, tokenizer, settings = load_run("{cfg.output_dir}")
```
or plain transformers: `GPT2LMHeadModel.from_pretrained(RUN)`, `AutoTokenizer.from_pretrained(RUN)`.
Settings, command line and library versions: `train_config.yaml`, `command.txt`, `versions.json`.
"""


# --- the run -----------------------------------------------------------------------------------
class _PackedPaddingFilter(logging.Filter):
    """Drops transformers' "pass an attention_mask" hint: packed blocks mask by position ids."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "strongly recommend passing in an `attention_mask`" not in record.getMessage()


def _quiet_packing_warning() -> None:
    logger = logging.getLogger("transformers.modeling_utils")
    if not any(isinstance(f, _PackedPaddingFilter) for f in logger.filters):
        logger.addFilter(_PackedPaddingFilter())


def _cpu_has_fast_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str) -> str:
    """``auto`` -> bf16 on GPUs (fp16 before Ampere) and on CPUs with native bf16, else fp32."""
    import torch

    if precision != "auto":
        if precision == "fp16" and not torch.cuda.is_available():
            msg = "--precision fp16 needs a CUDA GPU; use bf16 or fp32 on CPU"
            raise TrainError(msg)
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if _cpu_has_fast_bf16() else "fp32"


def training_arguments(cfg: TrainConfig, run: Path, precision: str, has_eval: bool = True):
    """``TrainingArguments`` for a config; ``batch_size`` is split over data-parallel processes."""
    import torch
    from transformers import TrainingArguments

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if cfg.batch_size % world:
        msg = f"--batch-size {cfg.batch_size} is the global batch; it must be divisible by the {world} processes"
        raise TrainError(msg)
    if cfg.report_to == "wandb":
        import importlib.util

        if importlib.util.find_spec("wandb") is None:
            msg = "--report-to wandb needs the wandb package (pip install wandb); or use tensorboard / none"
            raise TrainError(msg)
        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_DIR", str(run))
    per_device = 1 if cfg.batching in ("single", "buckets") else cfg.batch_size // world  # one window / bucket a pass
    return TrainingArguments(
        output_dir=str(run),
        per_device_train_batch_size=per_device,
        per_device_eval_batch_size=per_device,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,  # train() multiplies it by passes_per_step
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float below 1 is a ratio of all steps
        weight_decay=cfg.weight_decay,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=cfg.eval_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=max(2, cfg.save_total_limit),  # a kill while saving must leave a complete one
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        seed=cfg.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        report_to=["wandb"] if cfg.report_to == "wandb" else "none",
        include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_num_workers=cfg.num_workers,
        dataloader_pin_memory=False,
        ddp_find_unused_parameters=False,
        use_cpu=not torch.cuda.is_available(),  # also what makes torchrun / accelerate use gloo on CPU
        disable_tqdm=False,
    )


def train(cfg: TrainConfig, callbacks=()) -> Path:
    """Train a GPT-2 on a prepared dataset; returns the run folder holding the final model.

    Args:
        cfg: The settings (``mmmgen train`` flags).
        callbacks: Extra ``transformers.TrainerCallback`` objects (e.g. a sweep's pruning hook).

    Raises:
        DatasetError / TokenizerError / TrainError: with a one-line explanation.
    """
    from transformers import set_seed
    from transformers.trainer_utils import IntervalStrategy

    from mmmgen.data import load_report
    from mmmgen.model import build_model, run_settings
    from mmmgen.tokenizer import grammar_words, load_tokenizer, missing_words

    _quiet_packing_warning()
    run = Path(cfg.output_dir)
    report = load_report(cfg.dataset)
    tokenizer = load_tokenizer(cfg.tokenizer)
    gaps = missing_words(tokenizer, grammar_words(report))
    if gaps:
        log.warning("the tokenizer lacks %d grammar words (e.g. %s): the model can never write them", len(gaps), gaps[:3])
    main = int(os.environ.get("RANK", "0")) == 0
    resume_from = _resume_point(run, cfg.resume, main, cfg)
    precision = resolve_precision(cfg.precision)
    args = training_arguments(cfg, run, precision)
    with args.main_process_first(desc="tokenizing"):
        data = build_datasets(cfg, tokenizer, run / "cache", args.world_size)
    args.gradient_accumulation_steps = cfg.gradient_accumulation_steps * passes_per_step(cfg, data.stats["train"], args.world_size)
    if data.test is None:
        log.warning("the dataset has no test split: no evaluation, no samples")
        args.eval_strategy = IntervalStrategy.NO
    settings = run_settings(report, cfg.dataset, cfg.context_length)
    if main:
        _write_run_files(run, cfg, tokenizer, settings, data.stats)
        s = data.stats["train"]
        log.info("train: %d windows, %d tokens in %d %s (padding %.1f%%), precision %s", s["windows"],
                 s["tokens"], s["blocks"], GROUP_NAMES[cfg.batching], 100 * s["padding_fraction"], precision)
    if resume_from is not None and (run / "metrics.json").exists() and _finished(resume_from, cfg):
        log.info("%s already finished (%s): nothing left to train", run, resume_from.name)
        return run
    set_seed(cfg.seed)  # the initial weights depend on the seed alone
    model = build_model(cfg, len(tokenizer), tokenizer)
    trainer = _build_trainer(cfg, args, model, tokenizer, data, settings, run, main, resume_from)
    for callback in callbacks:
        trainer.add_callback(callback)
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    final = _final_eval(trainer) if data.test is not None else {}
    model.config.use_cache = True  # Trainer turns the cache off for training; generation wants it
    trainer.save_model(str(run))
    if main:
        metrics = {
            **{k: v for k, v in result.metrics.items() if isinstance(v, (int, float))},
            **{k: v for k, v in final.items() if k.startswith("eval_")},
            "train_runtime_total": round(next(c for c in trainer.callback_handler.callbacks if hasattr(c, "total")).total, 2),
            "train_tokens": int(trainer.state.num_input_tokens_seen),
            "params": sum(p.numel() for p in model.parameters()),
            "steps": trainer.state.global_step,
            "epochs": trainer.state.epoch or 0.0,
            "precision": precision,
            "world_size": args.world_size,
        }
        (run / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (run / "README.md").write_text(_model_card(cfg, metrics, data.stats, settings))
        shutil.rmtree(run / "cache", ignore_errors=True)
    return run


def _finished(checkpoint: Path, cfg: TrainConfig) -> bool:
    """Whether ``checkpoint`` already reached the run's end (steps, epochs or time budget of ``cfg``).

    Trainer would take one more step when asked to resume a finished run whose last epoch was
    partial; a finished run is left as it is instead.
    """
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        step = int(state["global_step"])
    except (OSError, ValueError, KeyError):
        return False
    if cfg.max_minutes:
        with contextlib.suppress(OSError, ValueError, KeyError):
            if json.loads((checkpoint / CLOCK_NAME).read_text())["train_seconds"] >= 60 * cfg.max_minutes:
                return True
    if cfg.max_steps:
        return step >= cfg.max_steps
    return state.get("num_train_epochs") == cfg.epochs and step >= int(state.get("max_steps") or 1 << 62)


def _final_eval(trainer) -> dict:
    """The evaluation at the last step: the logged one when training ended on an evaluation step."""
    for entry in reversed(trainer.state.log_history):
        if "eval_loss" in entry and entry.get("step") == trainer.state.global_step:
            return entry
    return trainer.evaluate()


SHAPE_FIELDS = ("n_layer", "n_head", "n_embd", "context_length")


def _check_same_shape(run: Path, cfg: TrainConfig) -> None:
    import yaml

    try:
        saved = yaml.safe_load((run / "train_config.yaml").read_text()) or {}
    except OSError:
        return
    changed = [f"--{k.replace('_', '-')} {saved.get(k)} -> {getattr(cfg, k)}" for k in SHAPE_FIELDS
               if k in saved and saved[k] != getattr(cfg, k)]
    if changed:
        msg = f"cannot resume {run} with another model shape ({', '.join(changed)})"
        raise TrainError(msg)


def _resume_point(run: Path, resume: bool, main: bool, cfg: TrainConfig | None = None) -> Path | None:
    if not resume:
        if checkpoints(run) or (run / "model.safetensors").exists():
            msg = f"{run} already holds a run; pass --resume to continue it or choose another --output-dir"
            raise TrainError(msg)
        return None
    if cfg is not None and run.is_dir():
        _check_same_shape(run, cfg)
    found = resume_checkpoint(run, remove_incomplete=main) if run.is_dir() else None
    log.info("resuming from %s", found) if found else log.info("no checkpoint in %s: starting from scratch", run)
    return found


def _build_trainer(cfg, args, model, tokenizer, data, settings, run, main, resume_from=None):
    callbacks, writer = [], None
    if cfg.report_to == "tensorboard" and main:
        from torch.utils.tensorboard import SummaryWriter
        from transformers.integrations import TensorBoardCallback

        writer = SummaryWriter(log_dir=str(run / "logs"))
        tb = TensorBoardCallback(tb_writer=writer)
        tb.logging_dir = str(run / "logs")
        callbacks.append(tb)
    sample_cb, clock_cb, time_progress_cb = _make_callbacks()
    clock = clock_cb(resume_from, cfg.max_minutes * 60 if cfg.max_minutes else None)
    callbacks += [sample_cb(run, tokenizer, settings, cfg, writer), clock]
    trainer = _make_trainer_class()(
        model=model, args=args, train_dataset=data.train, eval_dataset=data.test,
        data_collator=make_collator(cfg.batching, tokenizer.pad_token_id), processing_class=tokenizer, callbacks=callbacks,
    )
    trainer.note_ids = tuple(note_on_ids(tokenizer))
    if cfg.max_minutes:
        from transformers.trainer_callback import ProgressCallback

        trainer.budget = (cfg.warmup_ratio, clock)
        if trainer.pop_callback(ProgressCallback) is not None:
            trainer.add_callback(time_progress_cb(clock))
    return trainer


def format_summary(run: Path) -> str:
    """A few lines for people after ``mmmgen train``."""
    metrics = json.loads((Path(run) / "metrics.json").read_text())
    keys = ("params", "steps", "train_tokens", "train_runtime", "eval_loss", "eval_perplexity", "eval_loss_per_note")
    parts = [f"{k} {metrics[k]:.4g}" if isinstance(metrics.get(k), float) else f"{k} {metrics.get(k)}" for k in keys if k in metrics]
    return f"run written to {run}\n" + ", ".join(parts)

