"""Training throughput: ``mmmgen train``'s recipe against the tutorial's, plus the CPU choices behind it.

Three parts, each optional:

* ``peak``    -- the machine's matmul peak (fp32 and bf16 ``torch.mm``, best of several sizes):
  the yardstick for achieved FLOP/s.
* ``micro``   -- one training step (forward, backward, AdamW) of the same GPT-2 on random tokens
  under each choice ``mmmgen train`` makes on CPU: one window per pass with accumulation
  (``single``) vs rows side by side (``buckets``) vs packed blocks, fp32 vs bf16 autocast,
  attention dropout 0.1 vs 0, windows kept apart (block-diagonal mask) vs attention across
  windows, context 512 / 1024 / 2048 at equal tokens per step, ``torch.compile``. Variants are interleaved round by round and
  the best round counts, so load from other processes hurts every variant alike.
* ``recipes`` -- the same model on the same data for the same number of useful (non-padding)
  tokens, in one run: the tutorial's exact recipe (per-window truncation at the context length,
  ``DataCollatorForLanguageModeling(mlm=False)`` dynamic padding, GPT-2's dropouts, fp32, HF
  ``Trainer``) against ``mmmgen.model.train``'s (``--batching buckets``: windows of similar length side
  by side, no attention mask; or ``blocks``: whole windows packed, block-diagonal attention;
  attention dropout 0, precision ``auto``). Reports useful tokens/s, the
  padding fraction, achieved FLOP/s against the peak, and the test loss per note (summed NLL of
  each window over its notes) of both models, evaluated the same way.

Results are merged into ``benchmarks/results/train.json`` and rendered to ``train.md`` with the
hardware and library versions.

    .venv/bin/python benchmarks/bench_train.py --dataset /tmp/ds_dev --tokenizer /tmp/tok_dev
    .venv/bin/python benchmarks/bench_train.py --parts micro --preset tutorial
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import _env  # benchmarks/_env.py: hardware, versions and git state of a run

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
TARGET_RATIO = 3.0

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# --- peak --------------------------------------------------------------------------------------
def matmul_peak(dtype_name: str = "float32", seconds: float = 1.5) -> float:
    """Best GFLOP/s of square ``torch.mm`` over a few sizes (all threads)."""
    import torch

    dtype = getattr(torch, dtype_name)
    best = 0.0
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        torch.mm(a, b)
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            torch.mm(a, b)
            reps += 1
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - start) / 1e9)
    return best


# --- micro -------------------------------------------------------------------------------------
def _step_fn(shape: dict, ctx: int, batch: int, bf16: bool, attn_drop: float, packed: bool, compile_: bool,
             window: int = 400, activation: str = "gelu_pytorch_tanh", accumulate: int = 1):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=700, n_positions=ctx, n_layer=shape["n_layer"], n_embd=shape["n_embd"],
                     n_head=shape["n_head"], attn_pdrop=attn_drop, resid_pdrop=0.1, embd_pdrop=0.1,
                     bos_token_id=0, eos_token_id=0, pad_token_id=0, activation_function=activation)
    model = GPT2LMHeadModel(cfg).train()
    model.loss_type = "ForCausalLM"
    fwd = torch.compile(model) if compile_ else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)  # what Trainer uses (adamw_torch_fused)
    ids = torch.randint(1, 700, (batch, ctx))
    kwargs = {}
    if packed:  # windows of `window` tokens, positions restart: block-diagonal attention
        kwargs["position_ids"] = (torch.arange(ctx) % window).expand(batch, -1)

    def step():
        for _ in range(accumulate):  # one optimizer step over `accumulate` passes (--batching single)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = fwd(input_ids=ids, labels=ids, use_cache=False, **kwargs).loss
            (loss / accumulate).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def micro(shape: dict, rounds: int = 3, steps: int = 2, tokens_per_step: int = 4096, compile_: bool = False,
          slow: float = 100.0) -> list[dict]:
    """Tokens/s of one training step per variant; interleaved rounds, best round kept."""
    variants = {
        "fp32, single: one 400-token window a pass, 10 a step (mmmgen)": dict(ctx=400, bf16=False, attn_drop=0.0,
                                                                              packed=False, accumulate=10),
        "fp32, buckets: 10 rows of 400": dict(ctx=400, bf16=False, attn_drop=0.0, packed=False),
        "fp32, packed 1024": dict(ctx=1024, bf16=False, attn_drop=0.0, packed=True),
        "fp32, attention across windows 1024": dict(ctx=1024, bf16=False, attn_drop=0.0, packed=False),
        "fp32, packed 1024, GPT-2's gelu_new (unfused)": dict(ctx=1024, bf16=False, attn_drop=0.0, packed=True, activation="gelu_new"),
        "fp32, packed 1024, attention dropout 0.1": dict(ctx=1024, bf16=False, attn_drop=0.1, packed=True),
        "fp32, causal 1024, attention dropout 0.1": dict(ctx=1024, bf16=False, attn_drop=0.1, packed=False),
        "bf16 autocast, packed 1024": dict(ctx=1024, bf16=True, attn_drop=0.0, packed=True),
        "fp32, packed 512": dict(ctx=512, bf16=False, attn_drop=0.0, packed=True),
        "fp32, packed 2048": dict(ctx=2048, bf16=False, attn_drop=0.0, packed=True),
        "fp32, causal 2048, attention dropout 0.1": dict(ctx=2048, bf16=False, attn_drop=0.1, packed=False),
    }
    if compile_:
        variants["fp32, packed 1024, torch.compile"] = dict(ctx=1024, bf16=False, attn_drop=0.0, packed=True, compile_=True)
    fns = {}
    for name, v in variants.items():
        v = {"compile_": False, **v}
        accumulate = v.get("accumulate", 1)
        batch = max(1, tokens_per_step // (v["ctx"] * accumulate))
        fns[name] = (_step_fn(shape, batch=batch, **v), batch * v["ctx"] * accumulate)
        fns[name][0]()  # warm-up (and compile)
    best = dict.fromkeys(fns, 0.0)
    for r in range(rounds):
        for name, (fn, tokens) in fns.items():
            if r and best[name] < slow:  # a variant 10x slower than 'slow' tokens/s: one round is enough
                continue
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            best[name] = max(best[name], steps * tokens / (time.perf_counter() - start))
    base = best[next(iter(best))]
    return [{"variant": k, "tokens_per_s": round(v, 1), "vs_mmmgen": round(v / base, 3)} for k, v in best.items()]


# --- recipes -----------------------------------------------------------------------------------
class _TokenBudget:
    """Stop training once ``budget`` non-padding tokens have been seen (or ``seconds`` have passed);
    records ``(seconds, tokens)`` at each step for the steady-state rate (``steady_rate``)."""

    def __new__(cls, budget: int | None, seconds: float | None = None):
        from transformers import TrainerCallback

        class Stop(TrainerCallback):
            trace: list = []  # noqa: RUF012 (one instance per run)

            def on_train_begin(self, args, state, control, **kwargs):
                self.start, self.trace = time.perf_counter(), []

            def on_step_end(self, args, state, control, **kwargs):
                now = time.perf_counter() - self.start
                self.trace.append((now, state.num_input_tokens_seen))
                if (budget and state.num_input_tokens_seen >= budget) or (seconds and now >= seconds):
                    control.should_training_stop = True

        return Stop()


def steady_rate(trace: list, skip: float = 0.1) -> float | None:
    """Tokens/s between the step ending after ``skip`` of the run (warm-up, allocator, autotuning) and the last."""
    if len(trace) < 3:
        return None
    t_end = trace[-1][0]
    first = next(p for p in trace if p[0] >= skip * t_end)
    if trace[-1][0] <= first[0]:
        return None
    return (trace[-1][1] - first[1]) / (trace[-1][0] - first[0])


def _train_args(out: Path, cfg, max_steps: int, precision: str, batch_size: int, accumulate: int = 1):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=batch_size, max_steps=max_steps,
        gradient_accumulation_steps=accumulate,
        learning_rate=cfg.learning_rate, lr_scheduler_type="cosine", warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay, save_strategy="no", eval_strategy="no", logging_steps=10, report_to="none",
        seed=cfg.seed, include_num_input_tokens_seen="non_padding", bf16=precision == "bf16",
        dataloader_pin_memory=_cuda(), disable_tqdm=True, remove_unused_columns=False,
        use_cpu=not _cuda(),  # bf16 on a CPU with native bf16 (precision auto) needs it said
    )


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def recipes(dataset: str, tokenizer_dir: str, preset: str, budget: int, context: int | None, batch: int | None,
            peak: float, seed: int = 42, batching: str = "single", buckets_per_step: int = 4,
            dropout: float | None = None, attention_dropout: float | None = None, seconds: float | None = None,
            more_buckets: tuple[int, ...] = ()) -> dict:
    """The tutorial's recipe and mmmgen's on the same model, data and token budget (or ``seconds`` of
    training each, with the learning rate spread over that time); ``more_buckets``: extra mmmgen runs
    with these ``--buckets-per-step`` values (GPU: how big each forward pass is)."""
    import numpy as np
    import torch
    from datasets import load_from_disk
    from transformers import DataCollatorForLanguageModeling, GPT2LMHeadModel

    from mmmgen.config import TrainConfig
    from mmmgen.model.batching import (
        batch_padding_fraction,
        build_datasets,
        make_collator,
        passes_per_step,
    )
    from mmmgen.model.run import build_model, gpt2_config
    from mmmgen.model.sizing import flops_per_token
    from mmmgen.model.speed import shape_multiple
    from mmmgen.model.tokenizer import load_tokenizer
    from mmmgen.model.train import resolve_precision
    from mmmgen.model.trainer import (
        _make_callbacks,
        _make_trainer_class,
        evaluate_blocks,
        loss_metrics,
        note_on_ids,
    )

    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    overrides = {k: v for k, v in {"context_length": context, "batch_size": batch, "dropout": dropout,
                                    "attention_dropout": attention_dropout}.items() if v is not None}
    cfg = TrainConfig(dataset=dataset, tokenizer=tokenizer_dir, output_dir=str(tmp / "ours"), preset=preset,
                      max_cut=1.0, seed=seed, batching=batching,
                      buckets_per_step=buckets_per_step, **overrides)
    tok = load_tokenizer(tokenizer_dir)
    # the tutorial's data: per-window truncation at the context length
    split = load_from_disk(dataset)["train"]
    enc = split.map(lambda b: tok(b["text"], truncation=True, max_length=cfg.context_length), batched=True,
                    remove_columns=split.column_names, keep_in_memory=True)
    lengths = np.asarray([len(x) for x in enc["input_ids"]])
    tutorial_windows = cfg.batch_size  # the preset's batch: windows per step in the tutorial's recipe
    # mmmgen with as many useful tokens per step as the tutorial (so both take about the same steps)
    ours_cfg = replace(cfg, batch_size=max(1, round(tutorial_windows * lengths.mean() / cfg.context_length)))
    data = build_datasets(ours_cfg, tok)
    precision = resolve_precision(cfg.precision)
    collator = make_collator(ours_cfg.batching, tok.pad_token_id, shape_multiple(cfg.context_length, precision in ("bf16", "fp16")))
    per_device = 1 if ours_cfg.batching in ("single", "buckets") else ours_cfg.batch_size
    notes = note_on_ids(tok)
    fpt = flops_per_token(cfg.n_layer, cfg.n_embd, len(tok), cfg.context_length)
    results = {"when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "load": round(os.getloadavg()[0], 2),
               "seed": seed, "batching": ours_cfg.batching, "buckets_per_step": buckets_per_step,
               "mmmgen_dropout": ours_cfg.dropout, "mmmgen_attention_dropout": ours_cfg.attention_dropout,
               "preset": preset, "context_length": cfg.context_length, "batch_size": tutorial_windows,
               "mmmgen_batch_size": ours_cfg.batch_size,
               "n_layer": cfg.n_layer, "n_embd": cfg.n_embd, "n_head": cfg.n_head, "token_budget": budget}

    def run(name, model, args_precision, train_ds, coll, steps, batch_size, accumulate=1):
        stop = _TokenBudget(None if seconds else budget, seconds)
        trainer = _make_trainer_class()(model=model, args=_train_args(tmp / name, cfg, 10**7 if seconds else steps,
                                                                      args_precision, batch_size, accumulate),
                                        train_dataset=train_ds, data_collator=coll, processing_class=tok,
                                        callbacks=[stop])
        if seconds:  # the learning rate follows the clock, as `mmmgen train --max-minutes` does
            clock = _make_callbacks()[1](None, seconds)
            trainer.add_callback(clock)
            trainer.budget = (cfg.warmup_ratio, clock)
        start = time.perf_counter()
        trainer.train()
        took = time.perf_counter() - start
        model.eval()
        autocast = trainer.accelerator.autocast if args_precision != "fp32" else contextlib.nullcontext
        sums = evaluate_blocks(model, data.test, collator, per_device, notes, autocast=autocast)  # both scored alike
        useful = trainer.state.num_input_tokens_seen
        steady = steady_rate(stop.trace)
        if _cuda():
            import torch

            torch.cuda.synchronize()
        return {"seconds": round(took, 1), "useful_tokens": int(useful), "steps": trainer.state.global_step,
                "useful_tokens_per_s": round(useful / took, 1),
                "steady_useful_tokens_per_s": round(steady, 1) if steady else None,
                "useful_gflops_per_s": round(fpt * useful / took / 1e9, 2),
                "fraction_of_peak": round(fpt * useful / took / 1e9 / peak, 3) if peak else None,
                "max_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if _cuda() else None,
                **{k: round(v, 4) for k, v in loss_metrics(sums, "test").items()}}

    # the tutorial: per-window truncation, dynamic padding, GPT-2 dropouts, fp32
    tut_pad = batch_padding_fraction(lengths, tutorial_windows, cfg.seed)  # per-window batches padded to their longest
    torch.manual_seed(cfg.seed)
    tutorial_cfg = gpt2_config(cfg, len(tok), tok.pad_token_id)
    tutorial_cfg.attn_pdrop = tutorial_cfg.resid_pdrop = tutorial_cfg.embd_pdrop = 0.1  # GPT-2 defaults
    tutorial_cfg.activation_function = "gelu_new"
    tutorial_steps = math.ceil(budget / (tutorial_windows * lengths.mean()))
    if _cuda():
        torch.cuda.reset_peak_memory_stats()
    results["tutorial"] = {"padding_fraction": round(tut_pad, 4), "precision": "fp32",
                           **run("tutorial", GPT2LMHeadModel(tutorial_cfg), "fp32", enc,
                                 DataCollatorForLanguageModeling(tok, mlm=False), tutorial_steps, tutorial_windows)}
    torch.manual_seed(cfg.seed)
    if _cuda():
        torch.cuda.reset_peak_memory_stats()
    # single: the tutorial's windows per step exactly (its random batches, unpadded)
    accumulate = tutorial_windows if ours_cfg.batching == "single" else passes_per_step(ours_cfg, data.stats["train"])
    step_tokens = data.stats["train"]["tokens"] / len(data.train) * per_device * accumulate
    ours_steps = math.ceil(budget / step_tokens)
    results["mmmgen"] = {"padding_fraction": data.stats["train"]["padding_fraction"], "precision": precision,
                         **run("ours", build_model(ours_cfg, len(tok), tok), precision, data.train, collator, ours_steps,
                               per_device, accumulate)}
    results["speedup_useful_tokens_per_s"] = round(
        results["mmmgen"]["useful_tokens_per_s"] / results["tutorial"]["useful_tokens_per_s"], 2)
    for per_step in more_buckets:  # the same step, cut into fewer / more forward passes
        more = replace(ours_cfg, batching="buckets", buckets_per_step=per_step)
        more_data = build_datasets(more, tok)
        torch.manual_seed(cfg.seed)
        if _cuda():
            torch.cuda.reset_peak_memory_stats()
        results.setdefault("mmmgen_more", []).append(
            {"buckets_per_step": per_step, "padding_fraction": more_data.stats["train"]["padding_fraction"],
             "precision": precision,
             **run(f"ours-{per_step}", build_model(more, len(tok), tok), precision, more_data.train, collator,
                   ours_steps, 1, per_step)})
    return results


# --- report ------------------------------------------------------------------------------------
def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "tokenizers", "datasets", "accelerate"):
        out[name] = md.version(name)
    return out


def hardware() -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{_env.cpu_model()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, {gpu}"


NOTES = """Other processes may share the 2 cores during these runs (load average above), so absolute
tokens/s move by up to 2x between runs; the micro variants are interleaved, so their ratios hold
better than their absolute values. Recipes: the same GPT-2 shape, data and useful-token budget;
the tutorial's recipe pads each batch to its longest window and keeps GPT-2's dropouts (attention
dropout 0.1 takes SDPA off its fused kernel); mmmgen (`--batching buckets`, the default) puts
windows of similar length side by side, one row each, about batch x context tokens per step,
padded by a few tokens and without an attention mask (the fused causal kernel over each window's
own length); `--batching blocks` packs whole windows end to end into context-length rows with a
block-diagonal mask. Attention dropout 0, fused tanh-GELU, fp32 here because this CPU has no
native bf16 (a bf16 matmul runs ~100x slower than fp32)."""


def _ours(r: dict) -> str:
    """mmmgen's batches in a recipes entry (entries before --batching packed blocks)."""
    way = r.get("batching", "blocks")
    if way == "single":
        return f"mmmgen single: the same {r['batch_size']} windows a step, one per pass"
    if way == "buckets":
        return f"mmmgen buckets of {r.get('mmmgen_batch_size')} x {r['context_length']} tokens, {r.get('buckets_per_step')} a step"
    return f"mmmgen {r.get('mmmgen_batch_size')} packed blocks"


GPU_NOTES = """On a GPU (`--seconds`: each recipe trains for that long, the learning rate spread over the time):
the same GPT-2 shape and data, one recipe after the other on the same card. The tutorial's recipe
pads each batch of windows to its longest and computes in fp32 with GPT-2's dropouts; mmmgen's GPU
path (`--batching auto` = buckets) puts windows of similar length side by side (padding only after
each window's last word, no attention mask: the fused causal kernel), in bf16 autocast, with the
same useful tokens per optimizer step as the tutorial, cut into `--buckets-per-step` forward passes."""


def _budget(r: dict) -> str:
    return f"{r['seconds']:g} s of training each" if r.get("seconds") else f"{r['token_budget']:,} useful tokens"


def render(results: dict) -> str:
    notes = NOTES if results["hardware"].endswith("no GPU") else GPU_NOTES
    lines = ["# Training throughput (`benchmarks/bench_train.py`)", "",
             f"Measured {results['when']} on {results['hardware']}.",
             "Library versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
             f"Load average at start: {results.get('load')}", "", notes, ""]
    if "peak" in results:
        lines += ["## Matmul peak", "", *(f"- {k}: {v:.1f} GFLOP/s" for k, v in results["peak"].items()), ""]
    if "micro" in results:
        m = results["micro"]
        lines += [f"## One training step, {m['shape']} ({m['tokens_per_step']} tokens per step)", "",
                  "| variant | tokens/s | vs mmmgen |", "|---|---:|---:|"]
        lines += [f"| {r['variant']} | {r['tokens_per_s']:.0f} | {r['vs_mmmgen']:.2f} |" for r in m["rows"]]
        lines.append("")
    for label, r in results.get("recipes", {}).items():
        lines += [f"## Recipes on `{label}`: tutorial vs mmmgen ({r['n_layer']}x{r['n_embd']}, {r['n_head']} heads, "
                  f"context {r['context_length']}, batch {r['batch_size']} windows / {_ours(r)}, "
                  f"{_budget(r)}; measured {r.get('when', '')}, load {r.get('load', '')})", "",
                  "| recipe | precision | padding | useful tokens/s | useful GFLOP/s | of peak | test loss | loss/note |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        rows = [("tutorial", r["tutorial"]), ("mmmgen", r["mmmgen"])]
        rows += [(f"mmmgen, {x['buckets_per_step']} bucket(s) a step", x) for x in r.get("mmmgen_more", [])]
        for name, x in rows:
            lines.append(f"| {name} | {x['precision']} | {x['padding_fraction']:.1%} | {x['useful_tokens_per_s']:.0f} | "
                         f"{x['useful_gflops_per_s']:.1f} | {x['fraction_of_peak'] or 0:.0%} | {x['test_loss']:.3f} | "
                         f"{x['test_loss_per_note']:.3f} |")
        if r.get("seconds"):
            lines += ["", f"Each recipe trained for {r['seconds']:g} s (learning rate over that time); steady useful "
                          "tokens/s (after the first 10% of the run) and peak GPU memory:", "",
                      "| recipe | steps | useful tokens | steady useful tokens/s | peak memory GiB |", "|---|---:|---:|---:|---:|"]
            lines += [f"| {name} | {x['steps']} | {x['useful_tokens']:,} | {x.get('steady_useful_tokens_per_s') or 0:.0f} | "
                      f"{x.get('max_memory_gib') or 0:.1f} |" for name, x in rows]
        ok = "meets" if r["speedup_useful_tokens_per_s"] >= TARGET_RATIO else "misses"
        lines += ["", f"Speed-up in useful tokens/s: **{r['speedup_useful_tokens_per_s']:.2f}x** ({ok} the {TARGET_RATIO:g}x target).", ""]
    return "\n".join(lines) + "\n"


def issue26_flags(p) -> None:
    g = p.add_argument_group("whole runs (issue 26): --parts runs,neighbour,finetune (see benchmarks/_train_runs.py)")
    g.add_argument("--minutes", type=float, default=3.0, help="Training minutes of each run in 'runs' and 'neighbour'.")
    g.add_argument("--shapes", default="shipped,ctx2048", help="Comma-separated: shipped (4x256, context 1024), ctx2048.")
    g.add_argument("--recipes", default="tutorial,today,mmmgen,mmmgen-single,mmmgen-compile", help="Recipes of 'runs'.")
    g.add_argument("--corpora", default="chorales,multi-collection", help="Comma-separated: chorales (music21 Bach), "
                   "multi-collection (music21, all six collections), v2-data (the default model's data, linked in: see _train_runs.CORPORA).")
    g.add_argument("--corpus-sample", type=int, default=200, help="Works per collection of the corpora (mmmgen corpus --sample).")
    g.add_argument("--finetune-minutes", type=float, default=5.0, help="Minutes of each fine-tune in 'finetune'.")
    g.add_argument("--finetune-songs", type=int, default=50, help="Nottingham songs fine-tuned on in 'finetune'.")
    g.add_argument("--baseline-ref", default=None, help="Git ref of 'today' (default: main before issue 26).")
    g.add_argument("--work", default="/tmp/mmmgen-bench-train", help="Datasets, runs and logs (reused: delete to rerun).")
    g.add_argument("--quick", action="store_true", help="Smoke run: 0.5-minute runs, one shape, 20 works per collection, "
                   "1-minute fine-tunes on 20 songs.")


def issue26(a) -> int:
    """``runs``, ``neighbour`` and ``finetune``: results/train-cpu.{json,md} under ``--label`` (default cpu)."""
    import _train_runs as R

    sys.path.insert(0, str(HERE.parent / "src"))
    from mmmgen.model.speed import matmul_peak

    if a.quick:
        a.minutes, a.shapes, a.corpus_sample, a.finetune_minutes, a.finetune_songs = 0.5, "shipped", 20, 1.0, 20
    parts, work, ref = set(a.parts.split(",")), Path(a.work), a.baseline_ref or R.BASELINE_REF
    started = time.time()
    record = {"environment": _env.environment(("torch", "transformers", "accelerate")), "quick": a.quick,
              "peak_gflops": round(matmul_peak(seconds=2.0) / 1e9, 1), "baseline_ref": ref, "minutes": a.minutes}
    if parts & {"runs", "neighbour"}:
        data = R.prepare_data(work, a.corpus_sample, a.corpora.split(","))
        recipes = [r for r in a.recipes.split(",") if r] if "runs" in parts else ["today", "mmmgen"]
        record["rows"] = R.runs_part(data, a.shapes.split(","), a.minutes, work, ref, record["peak_gflops"] * 1e9,
                                     recipes, neighbour="neighbour" in parts)
    if "finetune" in parts:
        record["finetune"] = R.finetune_part(work, ref, a.finetune_minutes, a.finetune_songs, HERE.parent.parent / "shared" / "midi-styles")
    record["seconds"] = round(time.time() - started)
    out = RESULTS_DIR / "train-cpu.json" if Path(a.out).name == "train.json" else Path(a.out)
    runs = _env.merge_run(out, a.label or ("quick" if a.quick else "cpu"), record, render_issue26)
    print(render_issue26(runs))
    return 0


def render_issue26(runs: dict) -> str:
    import _train_runs as R

    lines = ["# Training on CPU: whole runs (`benchmarks/bench_train.py --parts runs,neighbour,finetune`)", ""]
    for label, r in runs.items():
        env = r["environment"]
        lines += [f"# {label}", "", f"{env['date']}, {env['hardware']['cpu']} ({env['hardware']['logical_cores']} logical cores, "
                  f"load {env['hardware']['load_avg_1_5_15']}), torch {env['versions']['torch']}, git {env['git_commit']}; "
                  f"{r['seconds']} s in all{' (quick)' if r.get('quick') else ''}.", ""]
        lines += [r["note"], ""] if r.get("note") else []  # written by hand after the run: what its rows ran with
        if "rows" in r:
            lines += R.render_runs(r)
        if "finetune" in r:
            lines += R.render_finetune(r["finetune"])
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", default="peak,micro,recipes",
                   help="Comma-separated: peak, micro, recipes; or runs, neighbour, finetune (whole mmmgen train runs, issue 26).")
    p.add_argument("--dataset", help="Prepared dataset (mmmgen prepare), needed by 'recipes'.")
    p.add_argument("--tokenizer", help="Tokenizer folder (mmmgen tokenizer), needed by 'recipes'.")
    p.add_argument("--preset", default="small", help="Model shape of both recipes and of 'micro'.")
    p.add_argument("--context-length", type=int, default=None, help="Override the preset's context.")
    p.add_argument("--batch-size", type=int, default=None, help="Override the preset's batch size.")
    p.add_argument("--tokens", type=int, default=100_000, help="Useful tokens each recipe trains on.")
    p.add_argument("--seed", type=int, default=42, help="Seed of both recipes (initial weights, data order).")
    p.add_argument("--batching", default="single", choices=["single", "buckets", "blocks"],
                   help="mmmgen's --batching way in 'recipes'.")
    p.add_argument("--buckets-per-step", type=int, default=4, help="mmmgen's --buckets-per-step in 'recipes'.")
    p.add_argument("--dropout", type=float, default=None, help="mmmgen's residual/embedding dropout (default: train's).")
    p.add_argument("--attention-dropout", type=float, default=None, help="mmmgen's attention dropout (default: train's, 0).")
    p.add_argument("--label", default=None, help="Name of the dataset in the results (default: its folder name).")
    p.add_argument("--compile", action="store_true", help="Also time torch.compile in 'micro' (slow to compile).")
    p.add_argument("--seconds", type=float, default=None, help="Train each recipe this long instead of --tokens.")
    p.add_argument("--more-buckets", default="", help="Comma-separated extra mmmgen --buckets-per-step runs in 'recipes'.")
    p.add_argument("--out", default=str(RESULTS_DIR / "train.json"), help="Results JSON (a .md is written beside it).")
    issue26_flags(p)
    a = p.parse_args(argv)
    if set(a.parts.split(",")) & {"runs", "neighbour", "finetune"}:
        return issue26(a)
    sys.path.insert(0, str(HERE.parent / "src"))
    from mmmgen.config import PRESETS

    parts = set(a.parts.split(","))
    out = Path(a.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    results.update(when=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), hardware=hardware(),
                   versions=versions(), load=os.getloadavg()[0] if hasattr(os, "getloadavg") else None)
    if "peak" in parts:
        old = results.get("peak", {})  # the machine's peak: keep the best measurement (others load the CPU)
        results["peak"] = {k: max(matmul_peak(d), old.get(k, 0.0)) for k, d in (("fp32", "float32"), ("bf16", "bfloat16"))}
        print(json.dumps(results["peak"]), flush=True)
    if "micro" in parts:
        shape = {k: PRESETS[a.preset][k] for k in ("n_layer", "n_head", "n_embd")}
        rows = micro(shape, compile_=a.compile)
        results["micro"] = {"shape": f"{a.preset} {shape['n_layer']}x{shape['n_embd']}", "tokens_per_step": 4096, "rows": rows}
        print(json.dumps(rows, indent=1), flush=True)
    if "recipes" in parts:
        if not (a.dataset and a.tokenizer):
            p.error("'recipes' needs --dataset and --tokenizer")
        peak = results.get("peak", {}).get("fp32", 0.0)
        label = a.label or Path(a.dataset).name
        results.setdefault("recipes", {})[label] = recipes(a.dataset, a.tokenizer, a.preset, a.tokens, a.context_length,
                                                           a.batch_size, peak, a.seed, a.batching,
                                                           a.buckets_per_step, a.dropout, a.attention_dropout, a.seconds,
                                                           tuple(int(x) for x in a.more_buckets.split(",") if x))
        results["recipes"][label]["seconds"] = a.seconds
        print(json.dumps(results["recipes"][label], indent=1), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    out.with_suffix(".md").write_text(render(results))
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
