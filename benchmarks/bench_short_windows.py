"""Which ``--batching`` is faster on CPU for a given window length: ``single`` or ``buckets``.

``mmmgen train --batching auto`` on a CPU picks ``single`` (one window per forward pass, a step
accumulates about batch x context tokens) for long windows and ``buckets`` (windows of similar
length side by side, one row each) for short ones: a fine-tune on folk tunes has windows of
about 90 words, and a forward pass of 90 tokens is mostly per-pass overhead. This script
measures one training step (forward, backward, fused AdamW) of the shipped model's shape under
both ways, for several window lengths, at the same tokens per step, and writes the crossover
that ``mmmgen.model.batching.SHORT_WINDOW_WORDS`` is set from.

Variants are interleaved round by round and the best round counts, so load from other
processes hurts every variant alike. Results: ``benchmarks/results/short_windows.{json,md}``.

    .venv/bin/python benchmarks/bench_short_windows.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import _env  # benchmarks/_env.py: hardware, versions and git state of a run

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))


def step_fn(length: int, rows: int, accumulate: int, vocab: int, bf16: bool):
    """One optimizer step over ``accumulate`` passes of ``rows`` windows of ``length`` tokens (4 x 256 GPT-2)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=vocab, n_positions=2048, n_layer=4, n_embd=256, n_head=4, attn_pdrop=0.0,
                     bos_token_id=0, eos_token_id=0, pad_token_id=0, activation_function="gelu_pytorch_tanh")
    model = GPT2LMHeadModel(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    ids = torch.randint(1, vocab, (rows, length))

    def step():
        for _ in range(accumulate):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(input_ids=ids, labels=ids, use_cache=False).loss
            (loss / accumulate).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def measure(lengths: list[int], step_tokens: int, capacity: int, rounds: int, vocab: int, bf16: bool) -> list[dict]:
    fns = {}
    for n in lengths:
        passes = max(1, step_tokens // n)
        rows = max(1, capacity // n)
        fns[(n, "single")] = (step_fn(n, 1, passes, vocab, bf16), passes * n)
        fns[(n, "buckets")] = (step_fn(n, rows, max(1, passes // rows), vocab, bf16), rows * n * max(1, passes // rows))
    for fn, _ in fns.values():
        fn()  # warm-up
    best = dict.fromkeys(fns, 0.0)
    for _ in range(rounds):
        for key, (fn, tokens) in fns.items():
            start = time.perf_counter()
            fn()
            best[key] = max(best[key], tokens / (time.perf_counter() - start))
    return [{"window_tokens": n, "single_tokens_per_s": round(best[(n, "single")]),
             "buckets_tokens_per_s": round(best[(n, "buckets")]),
             "buckets_vs_single": round(best[(n, "buckets")] / best[(n, "single")], 2)} for n in lengths]


def render(r: dict) -> str:
    lines = ["# `--batching single` vs `buckets` on CPU, by window length (`benchmarks/bench_short_windows.py`)", "",
             f"{r['env']['date']}, {r['env']['hardware']['cpu']} ({r['env']['hardware']['logical_cores']} cores, "
             f"{r['env']['hardware']['torch_threads']} torch threads), torch {r['env']['versions']['torch']}, "
             f"load before {r['load_before']}, after {r['load_after']}; "
             f"{'bf16 autocast' if r['bf16'] else 'fp32'}; 4 x 256 GPT-2, vocabulary {r['vocab']}; "
             f"{r['step_tokens']} tokens a step, buckets of {r['capacity']} tokens; best of {r['rounds']} interleaved rounds.", "",
             "| window tokens | single tokens/s | buckets tokens/s | buckets / single |", "|---:|---:|---:|---:|"]
    lines += [f"| {x['window_tokens']} | {x['single_tokens_per_s']} | {x['buckets_tokens_per_s']} | {x['buckets_vs_single']}x |"
              for x in r["rows"]]
    lines += ["", f"Buckets are faster up to windows of about {r['crossover']} tokens "
              "(the largest length measured where buckets / single >= 1.1)." if r["crossover"] else
              "Buckets were not 1.1x faster at any length measured.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lengths", default="48,96,192,384,768,1536")
    p.add_argument("--step-tokens", type=int, default=8192, help="Tokens a step (the shipped model: batch 4 x context 2048).")
    p.add_argument("--capacity", type=int, default=2048, help="Tokens a bucket (batch x context / buckets a step).")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--vocab", type=int, default=1229)
    p.add_argument("--fp32", action="store_true", help="fp32 instead of bf16 autocast.")
    p.add_argument("--results-dir", type=Path, default=HERE / "results")
    a = p.parse_args(argv)
    from mmmgen.config.threads import apply_threads
    from mmmgen.model.train import resolve_precision

    apply_threads(0)
    bf16 = not a.fp32 and resolve_precision("auto") == "bf16"
    lengths = [int(x) for x in a.lengths.split(",")]
    load_before = [round(x, 2) for x in os.getloadavg()]
    rows = measure(lengths, a.step_tokens, a.capacity, a.rounds, a.vocab, bf16)
    faster = [x["window_tokens"] for x in rows if x["buckets_vs_single"] >= 1.1]
    import torch

    env = _env.environment(("torch", "transformers"), torch_threads=torch.get_num_threads())
    r = {"env": env, "load_before": load_before, "load_after": [round(x, 2) for x in os.getloadavg()], "bf16": bf16,
         "vocab": a.vocab, "step_tokens": a.step_tokens, "capacity": a.capacity, "rounds": a.rounds,
         "rows": rows, "crossover": max(faster) if faster else None}
    a.results_dir.mkdir(parents=True, exist_ok=True)
    (a.results_dir / "short_windows.json").write_text(json.dumps(r, indent=2))
    (a.results_dir / "short_windows.md").write_text(render(r))
    print(render(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
