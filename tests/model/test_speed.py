"""Training speed: threads that follow the free cores, --threads, the profile, and fast paths that
compute the same loss as the eager one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mmmgen.config import PRESETS, TrainConfig
from mmmgen.config.threads import TAKEN, Usage, choose_threads, threads_for
from mmmgen.model.speed import PARTS, part_of, useful_flops_per_token

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "MMMGEN_THREADS", "OMP_NUM_THREADS")}
    return {**env, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false", **extra}


# --- threads ---------------------------------------------------------------------------------------
def test_threads_leave_cores_others_keep_busy():
    assert threads_for(0.0, 2) == 2
    assert threads_for(TAKEN - 0.05, 2) == 2
    assert threads_for(TAKEN + 0.05, 2) == 1  # a neighbour starved to half a core still takes its core
    assert threads_for(1.0, 2) == 1
    assert threads_for(5.0, 2) == 1  # never fewer than one
    assert threads_for(2.9, 16) == 13
    assert threads_for(None, 4) == 4  # no reading: all allowed cores


def test_usage_counts_a_busy_neighbour_not_this_process():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        stat = Path(f"/proc/{busy.pid}/stat")
        if not stat.exists():
            pytest.skip("no /proc")
        ticks = os.sysconf("SC_CLK_TCK")

        def child_seconds():
            fields = stat.read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / ticks

        usage = Usage(None)
        usage.read()
        before, start = child_seconds(), time.monotonic()
        x = 0
        while time.monotonic() - start < 1.0:  # this process busy too: it must not count as others
            x += 1
        child = (child_seconds() - before) / (time.monotonic() - start)
        others = usage.others()
    finally:
        busy.kill()
        busy.wait()
    assert others is not None
    assert others >= child - 0.15  # the busy loop's share of the CPU, whatever the machine's load
    cores = os.cpu_count() or 1
    assert others <= cores


def test_requested_threads_win_over_the_reading(monkeypatch):
    assert choose_threads(3)["threads"] == 3 and not choose_threads(3)["follow"]
    monkeypatch.setenv("MMMGEN_THREADS", "2")
    assert choose_threads()["threads"] == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # torchrun's one thread per process
    assert choose_threads()["threads"] == 2  # MMMGEN_THREADS first
    monkeypatch.setenv("MMMGEN_THREADS", "0")
    assert choose_threads()["threads"] == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    auto = choose_threads(sample_s=0.05)
    assert auto["follow"] and 1 <= auto["threads"] <= auto["cores"]


def test_threads_flag_parses_and_is_checked():
    cfg = TrainConfig(dataset="d", tokenizer="t", output_dir="o", preset="debug", threads=1)
    assert cfg.threads == 1 and cfg.compile == "auto" and not cfg.profile
    with pytest.raises(ValueError, match="--threads"):
        TrainConfig(dataset="d", tokenizer="t", output_dir="o", preset="debug", threads=-1)
    with pytest.raises(ValueError, match="--compile"):
        TrainConfig(dataset="d", tokenizer="t", output_dir="o", preset="debug", compile="maybe")


def test_cli_train_honours_threads_and_profiles(tiny_dataset, tiny_tokenizer, tmp_path):
    """``mmmgen train --threads 1 --profile`` in a fresh process: passive OpenMP waiting set before torch
    loaded, one thread, the choice printed, and a profile whose parts cover the profiled steps."""
    run = tmp_path / "run"
    code = ("import sys, os, torch; from mmmgen.cli import main; rc = main(sys.argv[1:]); "
            "print('THREADS', torch.get_num_threads(), os.environ.get('OMP_WAIT_POLICY')); sys.exit(rc)")
    args = ["train", "--dataset", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer), "--output-dir", str(run),
            "--preset", "debug", "--max-steps", "8", "--eval-steps", "100", "--save-steps", "100", "--report-to", "none",
            "--sample-tracks", "0", "--threads", "1", "--profile"]
    out = subprocess.run([sys.executable, "-c", code, *args], env=_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "THREADS 1 PASSIVE" in out.stdout
    assert "CPU threads: 1 of" in out.stderr + out.stdout
    prof = json.loads((run / "profile.json").read_text())
    assert prof["threads"] == 1 and prof["useful_tokens_per_s"] > 0 and 0 < prof["flop_use"] < 5
    assert set(prof["parts_share"]) == set(PARTS)
    assert sum(prof["parts_share"].values()) == pytest.approx(1.0, abs=0.01)
    assert prof["parts_share"]["matmul"] > 0 and prof["parts_share"]["optimizer"] > 0
    assert "FLOP use" in out.stdout and "step time by part" in out.stdout


def test_explicit_wait_policy_wins():
    code = "from mmmgen.config.threads import early_setup; import os; early_setup(); print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env=_env(OMP_WAIT_POLICY="ACTIVE"), capture_output=True, text=True)
    assert out.stdout.strip() == "ACTIVE"


# --- the profile's parts ---------------------------------------------------------------------------
def test_ops_sort_into_parts():
    assert part_of("aten::addmm") == part_of("aten::mm") == "matmul"
    assert part_of("aten::_scaled_dot_product_flash_attention_for_cpu") == "attention"
    assert part_of("aten::gelu_backward") == part_of("aten::native_layer_norm") == "elementwise"
    assert part_of("aten::_log_softmax") == "loss"


def test_useful_flops_count_the_matrix_weights(untrained):
    model, _ = untrained
    c = model.config
    weights = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "wpe" not in n)
    assert useful_flops_per_token(model) == 6 * weights == 6 * (12 * c.n_layer * c.n_embd**2 + c.vocab_size * c.n_embd)


# --- fast paths compute the same loss --------------------------------------------------------------
def _tiny_model(seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=64, n_positions=64, n_layer=2, n_embd=32, n_head=2, resid_pdrop=0.0, embd_pdrop=0.0,
                     attn_pdrop=0.0, activation_function="gelu_pytorch_tanh")
    model = GPT2LMHeadModel(cfg)
    model.loss_type = "ForCausalLM"
    return model


def _steps(model, optimizer, batch, steps: int = 3, forward=None) -> list[float]:
    forward = model if forward is None else forward
    losses = []
    for _ in range(steps):
        loss = forward(input_ids=batch, labels=batch, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


def test_fused_adamw_trains_like_the_plain_one():
    batch = torch.randint(0, 64, (2, 40), generator=torch.Generator().manual_seed(1))
    runs = {}
    for name, kw in {"plain": {"foreach": False}, "fused": {"fused": True}}.items():
        model = _tiny_model()
        runs[name] = _steps(model, torch.optim.AdamW(model.parameters(), lr=1e-2, **kw), batch)
    assert runs["fused"] == pytest.approx(runs["plain"], rel=1e-4)
    assert runs["fused"][-1] < runs["fused"][0]


@pytest.mark.slow
def test_compiled_training_step_gives_the_eager_loss():
    """torch.compile (inductor, dynamic lengths as --batching single makes them) vs eager: same losses."""
    gen = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, 64, (1, n), generator=gen) for n in (40, 23, 57)]
    losses = {}
    for name in ("eager", "compiled"):
        model = _tiny_model()
        forward = torch.compile(model, dynamic=True) if name == "compiled" else model
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True)
        losses[name] = [x for b in batches for x in _steps(model, opt, b, 1, forward)]
    assert losses["compiled"] == pytest.approx(losses["eager"], rel=1e-4)


def test_bf16_single_windows_take_few_lengths_and_keep_their_loss(untrained):
    """Padded to ``shape_multiple`` (bf16: oneDNN kernels per shape), a window scores exactly as unpadded."""
    from mmmgen.model.batching import make_collator
    from mmmgen.model.speed import MAX_SHAPES, shape_multiple

    assert shape_multiple(1024, low_precision=False) == 1
    for context in (512, 1024, 2048, 4096):
        m = shape_multiple(context, low_precision=True)
        assert m >= 16 and len({-(-n // m) * m for n in range(1, context + 1)}) <= MAX_SHAPES
    model, tok = untrained
    model.eval()  # no dropout: the same numbers twice
    window = {"windows": [torch.randint(5, len(tok), (37,)).numpy()]}
    losses = []
    for multiple in (1, 16):
        batch = make_collator("single", tok.pad_token_id, multiple)([window])
        assert batch["input_ids"].shape[1] == (37 if multiple == 1 else 48)
        with torch.no_grad():
            losses.append(model(**batch, use_cache=False).loss.item())
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)


def test_thread_follower_follows_the_others_use(monkeypatch):
    from mmmgen.config.threads import ThreadFollower

    readings = iter([1.0, 1.0, 0.0])
    monkeypatch.setattr(Usage, "others", lambda self: next(readings))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        follower = ThreadFollower(cores=2, every_s=0.0)
        assert follower.tick() == 1 and torch.get_num_threads() == 1  # a busy neighbour: its core left to it
        assert follower.tick() is None  # no change, nothing set
        assert follower.tick() == 2 and torch.get_num_threads() == 2  # it stopped: both cores again
    finally:
        torch.set_num_threads(before)


def test_gpu_default_batch_fills_each_pass_and_scales_the_learning_rate(monkeypatch):
    from mmmgen.config.train import GPU_LR_SCALE_MAX, GPU_PASS_TOKENS

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    base = dict(dataset="d", tokenizer="t", output_dir="o", preset="small")
    cfg = TrainConfig(**base)
    assert cfg.batching == "buckets"
    assert cfg.batch_size * cfg.context_length / cfg.buckets_per_step >= GPU_PASS_TOKENS  # tokens a forward pass
    assert cfg.learning_rate == pytest.approx(1e-3 * GPU_LR_SCALE_MAX)  # sqrt(64 / 4) = 4, capped
    tutorial = TrainConfig(**{**base, "preset": "tutorial"})
    assert tutorial.batch_size == 32 and tutorial.learning_rate == pytest.approx(5e-4 * 2)  # sqrt(32 / 8)
    mine = TrainConfig(**base, batch_size=8, learning_rate=3e-4)
    assert (mine.batch_size, mine.learning_rate) == (8, 3e-4)  # given values win
    kept_lr = TrainConfig(**base, learning_rate=3e-4)
    assert kept_lr.batch_size == 64 and kept_lr.learning_rate == 3e-4
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert TrainConfig(**base).batch_size == PRESETS["small"]["batch_size"]  # CPU: the preset's
