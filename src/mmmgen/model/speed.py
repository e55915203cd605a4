"""How fast training runs and where its time goes (``mmmgen train --profile``), and the CPU threads
that follow the free cores during a run.

* ``matmul_peak``: the machine's fp32 matrix-product rate, measured in the same run (one 2048 x
  2048 ``torch.mm`` repeated): the yardstick of ``flop_use``.
* ``useful_flops_per_token``: 6 x the model's matrix weights (head included) per useful token,
  the usual estimate of a training step's arithmetic (attention's own products left out).
* ``ProfileCallback``: profiles a few steps after warm-up with ``torch.profiler`` and sorts their
  time into parts (matmuls, attention, GELU / LayerNorm / dropout and other element-wise ops,
  loss, optimizer, data collation, Python and framework), then prints tokens/s, FLOP use against
  the measured peak and each part's share of step time, and writes ``RUN/profile.json``.
* ``ThreadCallback``: ``config.threads.ThreadFollower`` at each step.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

PARTS = ("matmul", "attention", "elementwise", "loss", "optimizer", "collation", "python and framework")
COLLATE_RANGE = "mmmgen.collate"
_MATMUL = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::addbmm", "aten::_mkl_linear",
           "mkldnn::_linear", "aten::mkldnn_linear")
_ATTENTION = ("scaled_dot_product", "flash_attention", "efficient_attention", "aten::_softmax", "aten::softmax",
              "aten::_softmax_backward_data", "aten::masked_fill")
_LOSS = ("log_softmax", "nll_loss", "cross_entropy")
_ELEMENTWISE = ("gelu", "layer_norm", "dropout", "bernoulli", "aten::add", "aten::mul", "aten::div", "aten::sub",
                "aten::tanh", "aten::pow", "aten::copy_", "aten::fill_", "aten::sum", "aten::where", "aten::zero_",
                "aten::cat", "aten::index_select", "aten::embedding", "aten::_to_copy", "aten::clone", "aten::neg",
                "aten::rand", "aten::lt", "aten::gt", "aten::ge", "aten::mean", "aten::rsqrt")


def matmul_peak(n: int = 2048, seconds: float = 1.0, dtype: str = "float32") -> float:
    """Best FLOP/s of an ``n x n`` ``torch.mm`` over ``seconds`` (5 rounds, best kept), all threads."""
    import torch

    a, b = torch.randn(n, n, dtype=getattr(torch, dtype)), torch.randn(n, n, dtype=getattr(torch, dtype))
    torch.mm(a, b)
    best = 0.0
    for _ in range(5):
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 5:
            torch.mm(a, b)
            reps += 1
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - start))
    return best


def useful_flops_per_token(model) -> float:
    """6 x the matrix weights of a GPT-2 (attention and MLP projections, the tied output head)."""
    cfg = model.config
    return 6.0 * (12 * cfg.n_layer * cfg.n_embd * cfg.n_embd + cfg.vocab_size * cfg.n_embd)


def part_of(name: str) -> str:
    """The part of a training step an op (profiler event name) belongs to."""
    if any(m == name for m in _MATMUL) or name.startswith("mkl") or "linear" in name:
        return "matmul"
    if any(a in name for a in _ATTENTION):
        return "attention"
    if any(x in name for x in _LOSS):
        return "loss"
    if name.startswith(("aten::", "cpp_fused", "graph_")):
        return "elementwise"
    return "python and framework"


def _in(ranges: list[tuple[float, float]], t: float) -> bool:
    return any(a <= t < b for a, b in ranges)


def step_parts(events, wall_us: float) -> dict:
    """Seconds of profiled time per part from ``torch.profiler`` events over ``wall_us`` of steps.

    Ops inside an ``Optimizer.step`` range count as optimizer, inside ``COLLATE_RANGE`` as
    collation, whatever they are; the wall time no op covers is Python and framework.
    """
    opt = [(e.time_range.start, e.time_range.end) for e in events if e.name.startswith("Optimizer.step")]
    coll = [(e.time_range.start, e.time_range.end) for e in events if e.name == COLLATE_RANGE]
    parts = dict.fromkeys(PARTS, 0.0)
    for e in events:
        if e.name.startswith(("Optimizer.", "autograd::", "ProfilerStep")) or e.name == COLLATE_RANGE:
            continue
        if e.device_type.name != "CPU" or not e.name.startswith(("aten::", "mkl", "cpp_fused", "graph_",
                                                                   "torch::autograd::AccumulateGrad")):
            continue
        self_us = e.self_cpu_time_total
        start = e.time_range.start
        part = "optimizer" if _in(opt, start) else "collation" if _in(coll, start) else part_of(e.name)
        parts[part] += self_us
    covered = sum(parts.values())
    parts["python and framework"] += max(0.0, wall_us - covered)
    return {k: v / 1e6 for k, v in parts.items()}


def timed_collator(collator):
    """``collator`` whose calls show in the profile as ``COLLATE_RANGE``."""
    import torch

    def collate(items):
        with torch.profiler.record_function(COLLATE_RANGE):
            return collator(items)

    collate.pad_id = getattr(collator, "pad_id", None)
    return collate


def make_thread_callback(follower):
    from transformers import TrainerCallback

    class ThreadCallback(TrainerCallback):
        """Follows the free cores during training (``config.threads.ThreadFollower``)."""

        def on_step_end(self, args, state, control, **kwargs):
            follower.tick()

    return ThreadCallback()


def make_profile_callback(run: Path, skip: int = 3, steps: int = 3, say=print):
    """A callback that profiles steps ``skip+1 .. skip+steps`` and reports at the end of training."""
    from transformers import TrainerCallback

    class ProfileCallback(TrainerCallback):
        def __init__(self):
            self.prof, self.report, self.trace = None, None, []
            self.peak = None

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.peak = matmul_peak()
            self.flops = useful_flops_per_token(model) if model is not None else None
            say(f"profile: fp32 matmul peak {self.peak / 1e9:.1f} GFLOP/s (2048 x 2048 torch.mm, measured now)")

        def on_step_begin(self, args, state, control, **kwargs):
            done = len(self.trace)
            if done == skip:
                from torch.profiler import ProfilerActivity, profile

                self.prof = profile(activities=[ProfilerActivity.CPU])
                self.prof.__enter__()
                self.prof_start = (time.perf_counter(), state.num_input_tokens_seen)

        def on_step_end(self, args, state, control, **kwargs):
            self.trace.append((time.perf_counter(), state.num_input_tokens_seen))
            if self.prof is not None and len(self.trace) == skip + steps:
                self.prof.__exit__(None, None, None)
                wall = time.perf_counter() - self.prof_start[0]
                parts = step_parts(self.prof.events(), wall * 1e6)
                self.report = {"profiled_steps": steps, "profiled_seconds": round(wall, 3),
                               "profiled_tokens": int(state.num_input_tokens_seen - self.prof_start[1]),
                               "parts_seconds": {k: round(v, 4) for k, v in parts.items()}}
                self.prof = None

        def on_train_end(self, args, state, control, **kwargs):
            if self.prof is not None:  # training ended inside the profiled steps
                self.prof.__exit__(None, None, None)
                self.prof = None
            if not state.is_world_process_zero:
                return
            out = summarize(self.trace, skip + steps, self.peak, self.flops, self.report)
            out["threads"] = _threads()
            (Path(run) / "profile.json").write_text(json.dumps(out, indent=2))
            say(format_profile(out))

    return ProfileCallback()


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def summarize(trace: list, skip: int, peak: float | None, flops: float | None, report: dict | None) -> dict:
    """Tokens/s over the unprofiled steps after ``skip`` (else all), FLOP use, and the parts' shares."""
    out: dict = {"steps": len(trace)}
    after = trace[skip:] if len(trace) > skip + 1 else trace
    if len(after) >= 2 and after[-1][0] > after[0][0]:
        rate = (after[-1][1] - after[0][1]) / (after[-1][0] - after[0][0])
        out["useful_tokens_per_s"] = round(rate, 1)
        if flops:
            out["useful_gflops_per_s"] = round(rate * flops / 1e9, 2)
        if flops and peak:
            out["fp32_peak_gflops_per_s"] = round(peak / 1e9, 1)
            out["flop_use"] = round(rate * flops / peak, 3)
    if report:
        total = sum(report["parts_seconds"].values()) or 1.0
        out.update(report)
        out["parts_share"] = {k: round(v / total, 3) for k, v in report["parts_seconds"].items()}
    return out


def format_profile(out: dict) -> str:
    lines = ["profile of training:"]
    if "useful_tokens_per_s" in out:
        lines.append(f"  useful tokens/s {out['useful_tokens_per_s']:.0f} ({out['threads']} threads)")
    if "flop_use" in out:
        lines.append(f"  FLOP use {out['flop_use']:.0%} of the fp32 matmul peak ({out['useful_gflops_per_s']:.1f} of "
                     f"{out['fp32_peak_gflops_per_s']:.1f} GFLOP/s; 6 x matrix weights x useful tokens/s)")
    if "parts_share" in out:
        lines.append(f"  step time by part ({out['profiled_steps']} profiled steps, {out['profiled_seconds']:.2f} s):")
        lines += [f"    {k:<22} {v:6.1%}" for k, v in out["parts_share"].items()]
    return "\n".join(lines)


# --- the run's speed settings ---------------------------------------------------------------------
MAX_SHAPES = 64  # --batching single in bf16: windows padded to at most this many lengths


def shape_multiple(context_length: int, low_precision: bool) -> int:
    """What ``--batching single`` pads each window's length to a multiple of (1: no padding).

    In bf16 / fp16 the CPU's matrix products run on oneDNN, which builds a kernel for each new matrix
    shape and keeps 1,024 of them: windows of every length from 1 to the context make each pass
    build its kernels anew (measured: 129 ms a pass over 200 lengths seen before, 71 ms padded to
    13 lengths, +2.4 % tokens). Padding follows a window's last word, so the causal mask hides it
    and the loss is unchanged. fp32 (MKL) has no such cost: no padding.
    """
    return max(16, -(-context_length // MAX_SHAPES)) if low_precision else 1


def compile_wanted(cfg) -> bool:
    """``--compile yes`` only: ``auto`` is off, since a compiled step measured slower than eager on CPU
    (0.91x in fp32, 0.89x in bf16, one thread, after compiling; benchmarks/README.md) and is unmeasured on GPUs."""
    return cfg.compile == "yes"


def speed_setup(cfg, args, run: Path, main: bool, say=log.info) -> list:
    """Threads (chosen, said, followed) and the profile; returns the callbacks that do it."""
    import torch

    from mmmgen.config.threads import ThreadFollower, apply_threads

    callbacks = []
    choice = apply_threads(cfg.threads, say=say if main else None)
    if choice["follow"] and not torch.cuda.is_available():
        callbacks.append(make_thread_callback(ThreadFollower(choice["cores"])))
    if args.torch_compile and main:  # set by training_arguments (compile_wanted)
        say("torch.compile: on (the first steps compile the training forward pass; evaluation stays eager)")
    if args.torch_compile and cfg.profile:
        import torch._inductor.config as inductor

        inductor.cpp.enable_kernel_profile = True  # fused kernels show in the profile under their names
    if cfg.profile and main:
        callbacks.append(make_profile_callback(run, say=print))
    return callbacks
