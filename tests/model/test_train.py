"""GPT-2 training: packing, presets and flags, the run folder, resume, errors and sizing."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import debug_config, one_thread

from mmmgen.cli import main
from mmmgen.config import PRESETS, TrainConfig
from mmmgen.model.batching import (
    PackedCollator,
    RowCollator,
    bucket_windows,
    pack_windows,
    padding_fraction,
    rows_padding_fraction,
)
from mmmgen.model.run import load_run, preset_config
from mmmgen.model.sizing import count_params, size_report
from mmmgen.model.tokenizer import TokenizerError
from mmmgen.model.train import TrainError, checkpoint_is_complete, resume_checkpoint, train
from mmmgen.text import vocab as V

ROOT = Path(__file__).resolve().parents[2]


# --- packing -------------------------------------------------------------------------------------
def test_pack_windows_keeps_every_window_whole_once():
    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 700, size=500)
    lengths[:3] = 1500  # longer than a block: cut, alone in a block
    blocks = pack_windows(lengths, 1024, seed=1)
    flat = sorted(i for b in blocks for i in b)
    assert flat == list(range(len(lengths)))
    assert all(sum(min(lengths[i], 1024) for i in b) <= 1024 for b in blocks)
    assert padding_fraction(lengths, blocks, 1024) < 0.03
    assert pack_windows(lengths, 1024, seed=1) == blocks  # deterministic


def test_collator_restarts_positions_and_skips_window_starts():
    coll = PackedCollator(pad_id=3)
    batch = coll([{"windows": [np.array([10, 11, 12]), np.array([20, 21])]}, {"windows": [np.array([30, 31, 32, 33])]}])
    assert batch["input_ids"].shape == (2, 8)
    assert batch["input_ids"][0].tolist() == [10, 11, 12, 20, 21, 3, 3, 3]
    assert batch["labels"][0].tolist() == [-100, 11, 12, -100, 21, -100, -100, -100]
    assert batch["position_ids"][0].tolist() == [0, 1, 2, 0, 1, 0, 1, 2]
    assert batch["labels"][1].tolist()[:4] == [-100, 31, 32, 33]


def test_packed_block_computes_exactly_its_windows_one_by_one():
    """Position resets give a block-diagonal mask: no window sees another."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=64, n_layer=2, n_embd=32, n_head=2)).eval()
    a, b = torch.randint(5, 50, (7,)), torch.randint(5, 50, (9,))
    batch = PackedCollator(pad_id=0)([{"windows": [a.numpy(), b.numpy()]}])
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        alone_a = model(input_ids=a[None]).logits[0]
        alone_b = model(input_ids=b[None]).logits[0]
    torch.testing.assert_close(packed[:7], alone_a, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(packed[7:16], alone_b, atol=1e-4, rtol=1e-4)


def test_bucket_windows_groups_similar_lengths_within_a_step():
    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 900, size=2000)
    lengths[:3] = 1500  # longer than the context: cut to it
    groups = bucket_windows(lengths, capacity=4096, context=1024, seed=1)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))  # each window once
    width = [-(-int(min(lengths[g].max(), 1024)) // 8) * 8 for g in groups]
    assert all(len(g) * w <= 4096 for g, w in zip(groups, width, strict=True))
    assert np.mean([len(g) * w for g, w in zip(groups, width, strict=True)]) > 0.85 * 4096  # steps stay full
    assert rows_padding_fraction(lengths, groups, 1024) < 0.02  # vs ~45% for random batches of 8
    assert bucket_windows(lengths, 4096, 1024, seed=1) == groups  # deterministic
    other = bucket_windows(lengths, 4096, 1024, seed=2)
    assert other != groups and sorted(map(len, other)) == sorted(map(len, groups))  # ties drawn by the seed
    assert bucket_windows([0, 5], 64, 64) == [[1]]  # an empty window is no row


def test_row_collator_rows_compute_exactly_their_windows_alone():
    """Right padding and no attention mask: the causal mask hides the padding from every real word."""
    from transformers import GPT2Config, GPT2LMHeadModel

    batch = RowCollator(pad_id=3)([{"windows": [np.array([10, 11, 12]), np.array([20, 21])]}])
    assert batch["input_ids"].tolist() == [[10, 11, 12, 3, 3, 3, 3, 3], [20, 21, 3, 3, 3, 3, 3, 3]]
    assert batch["labels"][1].tolist() == [20, 21, *[-100] * 6]
    assert batch["position_ids"][1].tolist() == list(range(8))
    assert all(v.is_contiguous() for v in batch.values())  # a DataLoader pins batches for a GPU: no expanded views
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=64, n_layer=2, n_embd=32, n_head=2)).eval()
    a, b = torch.randint(5, 50, (7,)), torch.randint(5, 50, (13,))
    batch = RowCollator(pad_id=0)([{"windows": [a.numpy(), b.numpy()]}])
    with torch.no_grad():
        rows = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False,
                     labels=batch["labels"])
        alone = [model(input_ids=w[None], labels=w[None]) for w in (a, b)]
    torch.testing.assert_close(rows.logits[0, :7], alone[0].logits[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(rows.logits[1, :13], alone[1].logits[0], atol=1e-4, rtol=1e-4)
    per_token = (alone[0].loss * 6 + alone[1].loss * 12) / 18  # the step's loss: mean over predicted words
    torch.testing.assert_close(rows.loss, per_token, atol=1e-5, rtol=1e-5)


def test_single_batching_steps_hold_the_tutorials_windows_unpadded(tiny_dataset, tiny_tokenizer):
    from mmmgen.model.batching import build_datasets, windows_per_step
    from mmmgen.model.tokenizer import load_tokenizer
    from mmmgen.model.train import training_arguments

    tok = load_tokenizer(tiny_tokenizer)
    cfg = debug_config(tiny_dataset, tiny_tokenizer, "unused")
    assert cfg.batching == ("buckets" if torch.cuda.is_available() else "auto")  # the default; a CPU resolves it in train()
    cfg = debug_config(tiny_dataset, tiny_tokenizer, "unused", batching="single")
    data = build_datasets(cfg, tok)
    s = data.stats["train"]
    assert len(data.train) == s["windows"] and all(len(b) == 1 for b in data.train.blocks) and s["padding_fraction"] == 0
    mean = s["tokens"] / s["windows"]
    assert s["windows_per_step"] == windows_per_step(cfg, mean) == round(cfg.batch_size * cfg.context_length / mean)
    batch = RowCollator(tok.pad_token_id, multiple=1)([data.train[0]])
    assert (batch["input_ids"] != tok.pad_token_id).all()  # one window, no padding
    assert data.stats["test"]["padding_fraction"] < 0.1  # evaluated on buckets
    args = training_arguments(cfg, Path("unused"), "fp32")
    assert args.per_device_train_batch_size == 1


def test_auto_batching_on_cpu_takes_buckets_for_short_windows_only(monkeypatch):
    from mmmgen.model.batching import SHORT_WINDOW_WORDS, resolve_auto_batching

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    base = dict(dataset="d", tokenizer="t", output_dir="o", preset="small")

    def way(words_per_window, **overrides):
        report = {"windows": {"train": 100}, "tokens": {"train": int(100 * words_per_window)}}
        return resolve_auto_batching(TrainConfig(**base, **overrides), report)

    assert way(90) == "buckets"  # a fine-tune on folk tunes: one pass of 90 tokens is mostly overhead
    assert way(SHORT_WINDOW_WORDS - 1) == "buckets"
    assert way(SHORT_WINDOW_WORDS) == "single"
    assert way(900) == "single"  # a band's 8 bars: one window is work enough for a pass
    assert way(90, batching="single") == "single"  # a choice given is kept
    assert resolve_auto_batching(TrainConfig(**base), {}) == "single"  # an old report without counts


def test_a_bucket_step_holds_the_same_buckets_on_one_process_or_two(tiny_dataset, tiny_tokenizer):
    from mmmgen.model.batching import build_datasets, passes_per_step
    from mmmgen.model.tokenizer import load_tokenizer

    tok = load_tokenizer(tiny_tokenizer)
    cfg = debug_config(tiny_dataset, tiny_tokenizer, "unused", batching="buckets", buckets_per_step=4)
    one, two = build_datasets(cfg, tok, world=1), build_datasets(cfg, tok, world=2)
    assert one.train.blocks == two.train.blocks  # the same buckets, whatever the processes
    assert passes_per_step(cfg, one.stats["train"], 1) == 4
    assert passes_per_step(cfg, two.stats["train"], 2) == 2  # 2 processes x 2 buckets: the step of one process


def test_fewer_buckets_a_step_than_processes_split_the_step(tiny_dataset, tiny_tokenizer):
    """One bucket a step over 2 processes: each process takes a bucket of half the tokens, not a whole one."""
    from mmmgen.model.batching import build_datasets, passes_per_step
    from mmmgen.model.tokenizer import load_tokenizer

    tok = load_tokenizer(tiny_tokenizer)
    cfg = debug_config(tiny_dataset, tiny_tokenizer, "unused", batching="buckets", buckets_per_step=1)
    one, two = build_datasets(cfg, tok, world=1), build_datasets(cfg, tok, world=2)
    assert passes_per_step(cfg, one.stats["train"], 1) == passes_per_step(cfg, two.stats["train"], 2) == 1
    def largest(data) -> int:  # the most tokens a bucket holds, padded to its longest window
        rows = (data.train.tokens[b]["input_ids"] for b in data.train.blocks)
        return max(len(r) * min(max(len(w) for w in r), cfg.context_length) for r in rows)

    most = cfg.batch_size * cfg.context_length
    assert most // 2 < largest(one) <= most and largest(two) <= most // 2
    assert len(two.train.blocks) > len(one.train.blocks)


def test_single_batching_step_loss_is_the_padded_batch_loss(debug_run, tiny_dataset, tiny_tokenizer):
    """Accumulating one-window passes gives the gradient of the tutorial's padded batch of the same windows."""
    from transformers import DataCollatorForLanguageModeling

    from mmmgen.model.batching import build_datasets
    from mmmgen.model.tokenizer import load_tokenizer

    tok = load_tokenizer(tiny_tokenizer)
    data = build_datasets(debug_config(tiny_dataset, tiny_tokenizer, "unused"), tok)
    model, _, _ = load_run(debug_run)
    model.train()
    model.config.resid_pdrop = model.config.embd_pdrop = 0.0
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    windows = [data.train[i]["windows"][0] for i in range(4)]
    padded = DataCollatorForLanguageModeling(tok, mlm=False)([{"input_ids": list(map(int, w))} for w in windows])
    model(**padded).loss.backward()
    want = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    total = sum(len(w) - 1 for w in windows)
    coll = RowCollator(tok.pad_token_id, multiple=1)
    for w in windows:  # what Trainer's accumulation does: each pass's summed loss over the step's tokens
        b = coll([{"windows": [w]}])
        model(input_ids=b["input_ids"], labels=b["labels"], num_items_in_batch=total).loss.backward()
    for p, g in zip(model.parameters(), want, strict=True):
        torch.testing.assert_close(p.grad, g, atol=1e-5, rtol=1e-4)


def test_batching_ways_score_the_same_windows_alike(tiny_dataset, tiny_tokenizer):
    from mmmgen.model.batching import build_datasets, make_collator
    from mmmgen.model.run import build_model
    from mmmgen.model.tokenizer import load_tokenizer
    from mmmgen.model.trainer import evaluate_blocks, loss_metrics, note_on_ids

    tok = load_tokenizer(tiny_tokenizer)
    torch.manual_seed(0)
    model = build_model(debug_config(tiny_dataset, tiny_tokenizer, "unused"), len(tok), tok).eval()
    scores = {}
    for way in ("single", "buckets", "blocks", "windows"):
        cfg = debug_config(tiny_dataset, tiny_tokenizer, "unused", batching=way)
        data = build_datasets(cfg, tok)
        assert data.stats["test"]["batching"] == way
        scores[way] = loss_metrics(evaluate_blocks(model, data.test, make_collator(way, tok.pad_token_id), 2, note_on_ids(tok)))
    for way in ("single", "blocks", "windows"):
        assert scores[way]["eval_loss_per_note"] == pytest.approx(scores["buckets"]["eval_loss_per_note"], rel=1e-4)
    assert TrainConfig(dataset="d", tokenizer="t", output_dir="o", packing=False).batching == "windows"
    with pytest.raises(ValueError, match="--batching must be one of"):
        TrainConfig(dataset="d", tokenizer="t", output_dir="o", batching="sorted")


# --- presets and flags ---------------------------------------------------------------------------
def test_presets_fill_unset_fields_and_flags_win():
    cfg = TrainConfig(dataset="d", tokenizer="t", output_dir="o")
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.context_length) == (6, 8, 512, 2048)  # the tutorial
    assert (cfg.learning_rate, cfg.warmup_ratio, cfg.weight_decay) == (5e-4, 0.01, 0.01)
    small = TrainConfig(dataset="d", tokenizer="t", output_dir="o", preset="small", n_layer=3)
    assert small.n_layer == 3 and small.n_embd == PRESETS["small"]["n_embd"]
    assert preset_config("debug").n_embd == PRESETS["debug"]["n_embd"]
    with pytest.raises(ValueError, match="must divide"):
        TrainConfig(dataset="d", tokenizer="t", output_dir="o", n_head=5)


def test_flags_and_yaml(tmp_path):
    from mmmgen.cli import parse_config

    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("preset: small\nn_layer: 2\nlearning_rate: 0.002\n")
    argv = ["--dataset", "d", "--tokenizer", "t", "--output-dir", "o", "--config", str(yaml_file), "--n-layer", "5",
            "--context-length", "256", "--batch-size", "2", "--gradient-accumulation-steps", "3", "--warmup-ratio",
            "0.1", "--weight-decay", "0", "--epochs", "2", "--max-steps", "7", "--eval-steps", "4", "--save-steps",
            "4", "--logging-steps", "1", "--seed", "3", "--report-to", "none", "--resume", "--n-head", "4",
            "--n-embd", "64"]
    (cfg,), _ = parse_config(argv, [TrainConfig], "t", "t")
    assert (cfg.preset, cfg.n_layer, cfg.learning_rate, cfg.context_length) == ("small", 5, 0.002, 256)
    assert (cfg.batch_size, cfg.gradient_accumulation_steps, cfg.max_steps, cfg.resume) == (2, 3, 7, True)
    assert (cfg.report_to, cfg.seed, cfg.epochs, cfg.warmup_ratio, cfg.weight_decay) == ("none", 3, 2.0, 0.1, 0.0)
    (cfg,), _ = parse_config([*argv, "--batching", "buckets", "--buckets-per-step", "2"], [TrainConfig], "t", "t")
    assert (cfg.batching, cfg.buckets_per_step) == ("buckets", 2)
    (cfg,), _ = parse_config([*argv, "--no-packing"], [TrainConfig], "t", "t")
    assert cfg.batching == "windows"


def test_unset_buckets_per_step_keeps_cpu_passes_at_2048_tokens_or_more(tiny_dataset, tiny_tokenizer):
    from mmmgen.model.batching import bucket_count, resolve_auto_batching

    def cfg(**kw):
        return debug_config(tiny_dataset, tiny_tokenizer, "unused", batching="buckets", **kw)

    assert [bucket_count(cfg(batch_size=4, context_length=n)) for n in (512, 1024, 2048, 4096)] == [1, 2, 4, 4]
    assert bucket_count(cfg(batch_size=4, context_length=1024, buckets_per_step=3)) == 3  # given: kept
    c = cfg(batch_size=4, context_length=1024)
    assert c.buckets_per_step is None and resolve_auto_batching(c, {}) == "buckets" and c.buckets_per_step == 2
    single = debug_config(tiny_dataset, tiny_tokenizer, "unused", batching="single")
    resolve_auto_batching(single, {})
    assert single.buckets_per_step is None  # only buckets use it


@pytest.mark.parametrize("name", ["debug", "small", "tutorial"])
def test_config_files_parse(name):
    from mmmgen.cli import parse_config

    argv = ["--config", str(ROOT / "configs" / f"{name}.yaml"), "--dataset", "d", "--tokenizer", "t", "--output-dir", "o"]
    (cfg,), _ = parse_config(argv, [TrainConfig], "t", "t")
    assert cfg.preset == name


def test_gpu_default_model_config_parses_to_its_shape():
    """configs/default-model-gpu.yaml (scripts/gpu_default_model.py): 6x320 in bf16 buckets, under 25 MB in fp16."""
    from mmmgen.cli import parse_config

    argv = ["--config", str(ROOT / "configs" / "default-model-gpu.yaml"), "--dataset", "d", "--tokenizer", "t", "--output-dir", "o"]
    (cfg,), _ = parse_config(argv, [TrainConfig], "t", "t")
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.batching, cfg.precision) == (6, 5, 320, "buckets", "bf16")
    assert 2 * count_params(cfg.n_layer, cfg.n_embd, 700, cfg.context_length) <= 25e6


def test_count_params_matches_transformers():
    from mmmgen.model.run import build_model

    cfg = preset_config("small")
    model = build_model(cfg, 700)
    assert count_params(cfg.n_layer, cfg.n_embd, 700, cfg.context_length) == sum(p.numel() for p in model.parameters())


# --- the debug run -------------------------------------------------------------------------------
def test_run_folder_explains_itself(debug_run):
    for name in ("train_config.yaml", "command.txt", "versions.json", "mmmgen.json", "metrics.json", "README.md",
                 "tokenizer.json", "config.json", "model.safetensors", "samples", "checkpoint-30"):
        assert (debug_run / name).exists(), name
    metrics = json.loads((debug_run / "metrics.json").read_text())
    for key in ("train_runtime", "train_tokens", "eval_loss", "eval_loss_per_note", "eval_perplexity", "params"):
        assert key in metrics, key
    assert metrics["train_tokens"] > 0 and metrics["params"] > 0 and metrics["steps"] == 30
    assert metrics["eval_loss_per_note"] > metrics["eval_loss"]  # several words per note
    assert not list(debug_run.rglob("*.bin")) or all(p.name == "training_args.bin" for p in debug_run.rglob("*.bin"))
    assert list((debug_run / "samples").glob("*.mid")) and list((debug_run / "samples").glob("*.txt"))
    card = (debug_run / "README.md").read_text()
    assert "eval_loss_per_note" in card and "debug" in card


def test_loss_falls(debug_run):
    state = json.loads((debug_run / "checkpoint-30" / "trainer_state.json").read_text())
    losses = [e["loss"] for e in state["log_history"] if "loss" in e]
    evals = [e["eval_loss"] for e in state["log_history"] if "eval_loss" in e]
    assert np.mean(losses[-5:]) < losses[0] - 1.0
    assert evals[-1] < evals[0]


def test_model_loads_with_plain_transformers_and_generates(debug_run):
    from transformers import AutoTokenizer, GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(str(debug_run)).eval()
    tok = AutoTokenizer.from_pretrained(str(debug_run))
    prompt = f"{V.PIECE_START} {V.time_signature(4, 4)} {V.genre('POP')} {V.TRACK_START}"
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    out = model.generate(ids, max_new_tokens=20, do_sample=True, temperature=0.75, pad_token_id=tok.pad_token_id)
    assert out.shape[1] > ids.shape[1]
    assert tok.decode(out[0]).startswith(prompt)


def test_load_run_gives_codec_settings(debug_run, tiny_dataset):
    from mmmgen.data.prepare import load_report

    model, tok, settings = load_run(debug_run)
    report = load_report(tiny_dataset)
    assert settings["codec"] == report["codec"]
    assert settings["density_edges"] == report["density_edges"]
    assert settings["genre_labels"] == ["OTHER", "POP", "ROCK"]
    assert model.config.vocab_size == len(tok)
    assert model.config.pad_token_id == tok.pad_token_id


def test_resume_continues_exactly(debug_run, tiny_dataset, tiny_tokenizer, tmp_path):
    """Interrupted after the step-20 checkpoint (step 24), resumed: the same losses as without a break."""
    from transformers import TrainerCallback

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 24:
                raise KeyboardInterrupt

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt), one_thread():
        train(debug_config(tiny_dataset, tiny_tokenizer, run), callbacks=[Crash()])
    assert (run / "checkpoint-20").is_dir() and not (run / "model.safetensors").exists()
    with pytest.raises(TrainError, match="--resume"):
        train(debug_config(tiny_dataset, tiny_tokenizer, run))
    with one_thread():
        train(debug_config(tiny_dataset, tiny_tokenizer, run, resume=True))

    def losses(folder):
        state = json.loads((folder / "checkpoint-30" / "trainer_state.json").read_text())
        return {e["step"]: e["loss"] for e in state["log_history"] if "loss" in e}

    expected, got = losses(debug_run), losses(run)
    assert sorted(got) == sorted(expected)
    for step in range(21, 31):
        assert got[step] == pytest.approx(expected[step], rel=1e-4), step
    assert json.loads((run / "metrics.json").read_text())["train_tokens"] == json.loads(
        (debug_run / "metrics.json").read_text())["train_tokens"]


def test_incomplete_newest_checkpoint_falls_back(debug_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(debug_run, run)
    weights = run / "checkpoint-30" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # killed while writing
    assert checkpoint_is_complete(run / "checkpoint-20")
    assert not checkpoint_is_complete(run / "checkpoint-30")
    assert resume_checkpoint(run) == run / "checkpoint-20"
    assert not (run / "checkpoint-30").exists()
    (run / "checkpoint-20" / "trainer_state.json").unlink()
    assert resume_checkpoint(run, remove_incomplete=False) == run / "checkpoint-10"
    assert (run / "checkpoint-20").is_dir()


def test_resume_refuses_another_model_shape(debug_run, tiny_dataset, tiny_tokenizer, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(debug_run, run)
    with pytest.raises(TrainError, match="--n-embd 32 -> 64"):
        train(debug_config(tiny_dataset, tiny_tokenizer, run, resume=True, n_embd=64))


def test_resume_of_a_finished_run_changes_nothing(debug_run, tiny_dataset, tiny_tokenizer, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(debug_run, run)
    train(debug_config(tiny_dataset, tiny_tokenizer, run, resume=True))
    before = json.loads((debug_run / "metrics.json").read_text())
    after = json.loads((run / "metrics.json").read_text())
    assert after["steps"] == 30 and after["eval_loss"] == pytest.approx(before["eval_loss"])
    assert len((run / "command.txt").read_text().splitlines()) == 4  # two sessions, each dated


# --- errors --------------------------------------------------------------------------------------
def test_one_line_errors(tiny_dataset, tiny_tokenizer, tmp_path, capsys):
    base = ["train", "--preset", "debug", "--report-to", "none", "--output-dir", str(tmp_path / "r")]
    assert main([*base, "--dataset", str(tmp_path / "none"), "--tokenizer", str(tiny_tokenizer)]) == 2
    assert "not a prepared dataset" in capsys.readouterr().err
    assert main([*base, "--dataset", str(tiny_dataset), "--tokenizer", str(tmp_path / "none")]) == 2
    assert "tokenizer not found" in capsys.readouterr().err
    assert main([*base, "--dataset", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer), "--context-length", "64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "24 of 24 training windows" in err and "--context-length 64" in err and "--max-cut" in err


def test_tokenizer_that_misses_dataset_words(tiny_dataset, tmp_path):
    from mmmgen.model.tokenizer import train_tokenizer

    report = json.loads((tiny_dataset / "report.json").read_text())
    other = tmp_path / "other"
    shutil.copytree(tiny_dataset, other)
    report["genre_labels"] = ["OTHER"]  # a tokenizer built for a dataset without POP/ROCK
    (other / "report.json").write_text(json.dumps(report))
    from datasets import load_from_disk

    ds = load_from_disk(str(other))
    ds["train"] = ds["train"].map(lambda r: {"text": r["text"].replace("GENRE=POP", "GENRE=OTHER").replace("GENRE=ROCK", "GENRE=OTHER")})
    ds.save_to_disk(str(tmp_path / "other2"))
    (tmp_path / "other2" / "report.json").write_text(json.dumps(report))
    train_tokenizer(tmp_path / "other2", tmp_path / "tok")
    with pytest.raises(TokenizerError, match=r"does not cover the dataset.*GENRE="):
        train(debug_config(tiny_dataset, tmp_path / "tok", tmp_path / "run"))


# --- sizing --------------------------------------------------------------------------------------
def test_size_report(tiny_dataset, capsys):
    r = size_report(tiny_dataset)
    assert r["tokens"] == json.loads((tiny_dataset / "report.json").read_text())["tokens"]["train"]
    assert r["params"] == int(r["tokens"] / 20)
    assert r["preset"] == "debug"
    assert main(["size", "--dataset", str(tiny_dataset)]) == 0
    out = capsys.readouterr().out
    assert "compute-optimal" in out and "preset that fits: debug" in out


# --- slower: processes ---------------------------------------------------------------------------
def _cli(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
    return [sys.executable, "-m", "mmmgen", "train", *args], env


@pytest.mark.slow
def test_kill_9_then_resume(tiny_dataset, tiny_tokenizer, tmp_path, debug_run):
    run = tmp_path / "run"
    flags = ["--dataset", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer), "--output-dir", str(run), "--preset",
             "debug", "--max-steps", "30", "--eval-steps", "10", "--save-steps", "10", "--logging-steps", "1",
             "--report-to", "none", "--sample-tracks", "1", "--sample-max-tokens", "24"]
    cmd, env = _cli(*flags)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (run / "checkpoint-10" / "trainer_state.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert not (run / "model.safetensors").exists()
    cmd, env = _cli(*flags, "--resume")
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    got = json.loads((run / "metrics.json").read_text())
    want = json.loads((debug_run / "metrics.json").read_text())
    assert got["steps"] == 30 and got["train_tokens"] == want["train_tokens"]
    assert got["eval_loss"] == pytest.approx(want["eval_loss"], rel=1e-3)


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tiny_dataset, tiny_tokenizer, tmp_path, debug_run):
    run = tmp_path / "ddp"
    flags = ["--dataset", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer), "--output-dir", str(run), "--preset",
             "debug", "--max-steps", "30", "--eval-steps", "10", "--save-steps", "10", "--logging-steps", "1",
             "--report-to", "none", "--sample-tracks", "1", "--sample-max-tokens", "24"]
    _, env = _cli(*flags)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "mmmgen", "train", *flags]
    subprocess.run(torchrun, env=env, check=True, capture_output=True, timeout=600)
    got = json.loads((run / "metrics.json").read_text())
    want = json.loads((debug_run / "metrics.json").read_text())
    assert got["world_size"] == 2 and got["steps"] == 30
    # a step holds --batch-size x --context-length tokens at most (debug: 4 x 512) whatever the processes, not
    # twice that (it did with one bucket a step: each process took a whole one); the distributed sampler
    # repeats a block or two to even out the processes, and buckets of half the size fill a little differently
    most = 30 * 4 * 512
    assert want["train_tokens"] <= most and got["train_tokens"] <= 1.05 * most
    assert got["train_tokens"] == pytest.approx(want["train_tokens"], rel=0.2)
    assert got["eval_loss"] == pytest.approx(want["eval_loss"], rel=0.05)


def test_no_packing_is_the_tutorials_one_window_per_example(tiny_dataset, tiny_tokenizer):
    from mmmgen.model.batching import batch_padding_fraction, build_datasets
    from mmmgen.model.tokenizer import load_tokenizer

    tok = load_tokenizer(tiny_tokenizer)
    packed = build_datasets(debug_config(tiny_dataset, tiny_tokenizer, "unused", batching="blocks"), tok)
    cfg = debug_config(tiny_dataset, tiny_tokenizer, "unused", packing=False)
    single = build_datasets(cfg, tok)
    assert all(len(b) == 1 for b in single.train.blocks)
    assert len(single.train) == single.stats["train"]["windows"] > len(packed.train)
    assert single.stats["train"]["tokens"] == packed.stats["train"]["tokens"]
    few = build_datasets(debug_config(tiny_dataset, tiny_tokenizer, "unused", max_eval_windows=3), tok)
    assert few.stats["test"]["windows"] == 3 < packed.stats["test"]["windows"]
    lengths = [len(single.train[i]["windows"][0]) for i in range(len(single.train))]
    assert single.stats["train"]["padding_fraction"] == round(batch_padding_fraction(lengths, cfg.batch_size, cfg.seed), 4) > 0
    assert batch_padding_fraction([4, 4, 8, 8], 2, seed=0) in (0.0, 0.25)  # (4,4)(8,8) or (4,8)(4,8)
    assert batch_padding_fraction([5, 5, 5], 3) == 0.0


def test_time_schedule_warms_up_then_decays_to_zero():
    from mmmgen.model.trainer import time_schedule

    assert time_schedule(0.0, 0.1) == 0.0 and time_schedule(0.05, 0.1) == pytest.approx(0.5)
    assert time_schedule(0.1, 0.1) == pytest.approx(1.0) and time_schedule(0.55, 0.1) == pytest.approx(0.5)
    assert time_schedule(1.0, 0.1) == pytest.approx(0.0) and time_schedule(3.0, 0.0) == pytest.approx(0.0)
    values = [time_schedule(p / 100, 0.1) for p in range(10, 101)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_max_minutes_stops_training_on_the_clock(tiny_dataset, tiny_tokenizer, tmp_path):
    cfg = debug_config(tiny_dataset, tiny_tokenizer, tmp_path / "run", max_steps=100_000, max_minutes=0.15,
                       eval_steps=100_000, save_steps=100_000, warmup_ratio=0.5, sample_tracks=0)
    from transformers import TrainerCallback

    rates = []

    class Rates(TrainerCallback):
        def on_step_end(self, args, state, control, lr_scheduler=None, **kwargs):
            rates.append(lr_scheduler.get_last_lr()[0])

    start = time.time()
    with one_thread():
        run = train(cfg, callbacks=[Rates()])
    metrics = json.loads((run / "metrics.json").read_text())
    # stopped by the 9-second clock, not by max_steps (bounds generous: a loaded 2-core machine runs slow steps)
    assert 1 <= metrics["steps"] < 100_000 and time.time() - start < 120
    assert 9 <= metrics["train_runtime_total"] <= 60
    peak = int(np.argmax(rates))  # warmup to the peak rate, then decay towards 0 by the end of the budget
    assert 0 < peak < len(rates) - 1 and rates[peak] <= cfg.learning_rate
    assert rates[0] < 0.9 * rates[peak] and rates[-1] < 0.2 * rates[peak]


def test_load_run_computes_fp16_weights_in_fp32(debug_run, tmp_path):
    """Weights shipped in fp16 (half the size) load as fp32, what a CPU computes fast."""
    import shutil

    from safetensors.torch import load_file, save_file

    half = tmp_path / "half"
    shutil.copytree(debug_run, half, ignore=shutil.ignore_patterns("checkpoint-*", "logs", "samples"))
    weights = load_file(str(half / "model.safetensors"))
    save_file({k: v.half().contiguous() for k, v in weights.items()}, str(half / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((half / "config.json").read_text())
    (half / "config.json").write_text(json.dumps({**config, "dtype": "float16"}))  # as model.half().save_pretrained writes
    model, _, _ = load_run(half)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    reference, _, _ = load_run(debug_run)
    ids = torch.arange(5, 25)[None]
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, reference(ids).logits, atol=0.05, rtol=0.01)


def test_ship_run_copies_only_the_final_model(debug_run, tmp_path):
    from mmmgen.model.run import RunError, ship_run

    dest = ship_run(debug_run, tmp_path / "shipped")
    names = {p.name for p in dest.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "mmmgen.json", "README.md", "metrics.json"} <= names
    assert not {"training_args.bin", "command.txt", "samples", "logs"} & names and not any(n.startswith("checkpoint-") for n in names)
    model, _, settings = load_run(dest)
    assert settings["codec"]["bars"] and model.config.n_layer == 2
    trained_on = load_run(debug_run)[2]["dataset"]  # the run folder keeps the absolute path ...
    assert Path(trained_on).is_absolute() and not Path(settings["dataset"]).is_absolute()  # ... a shipped copy does not
    assert settings["dataset"] == Path(trained_on).name and trained_on not in (dest / "README.md").read_text()
    ship_run(debug_run, dest)  # replaces what was there
    with pytest.raises(RunError, match=r"over the 0\.01 MB limit"):
        ship_run(debug_run, tmp_path / "too_big", max_mb=0.01)
    assert not (tmp_path / "too_big").exists()
    with pytest.raises(RunError):
        ship_run(tmp_path, tmp_path / "x")


def test_the_time_budget_keeps_room_for_the_final_evaluation_and_sample(monkeypatch):
    """--max-minutes covers the final evaluation and its sample: training stops when the time left
    is what the last evaluation (sample included) took, and the learning rate decays over the time it trains."""
    from types import SimpleNamespace

    from mmmgen.model import trainer as T

    now = [1000.0]
    monkeypatch.setattr(T.time, "time", lambda: now[0])
    clock = T._make_callbacks()[1](None, budget_s=100.0)
    control, state = SimpleNamespace(should_training_stop=False), SimpleNamespace(global_step=1)
    now[0] += 50  # 50 s of training, then an evaluation with its sample of 20 s
    clock.on_step_end(None, state, control)
    now[0] += 20
    clock.on_evaluate(None, state, control)
    assert clock.reserve_s == 20 and clock.train_budget_s == 80 and not control.should_training_stop
    now[0] += 9  # 79 s: one more step fits
    clock.on_step_end(None, state, control)
    assert not control.should_training_stop
    now[0] += 1  # 80 s: the final evaluation needs the rest
    clock.on_step_end(None, state, control)
    assert control.should_training_stop
    slow = T._make_callbacks()[1](None, budget_s=100.0)
    slow.reserve_s = 90.0  # an evaluation slower than the budget: at least half of it trains
    assert slow.train_budget_s == 50


def _sample_callback(tmp_path, writer):
    from types import SimpleNamespace

    from mmmgen.model.trainer import _make_callbacks

    sample_callback = _make_callbacks()[0]
    return sample_callback(tmp_path, None, {"codec": {"grid": 12}}, SimpleNamespace(sample_audio=True), writer=writer)


def test_sample_audio_reaches_tensorboard_as_one_channel_and_a_silent_sample_has_none(tmp_path, monkeypatch):
    """A sample without a note (a chord track and a track of empty bars) once stopped a 90-minute run at
    its evaluation: its one-sample audio was no 1-D tensor for tensorboard. Such a sample is not rendered;
    a sounding one reaches tensorboard's own check as one channel."""
    from types import SimpleNamespace

    from torch.utils.tensorboard.summary import audio as tensorboard_audio

    from mmmgen.render import audio as A
    from mmmgen.text.decode import text_to_score

    logged = []

    class Writer:  # what SummaryWriter.add_audio does with the tensor, without an event file
        def add_audio(self, tag, tensor, step, sample_rate):
            tensorboard_audio(tag, tensor, sample_rate=sample_rate)
            logged.append(tuple(tensor.shape))

    rate = 22050
    monkeypatch.setattr(A, "synthesize", lambda score, sample_rate: (np.full((2, rate), 0.1, np.float32), rate, "stub"))
    callback, args = _sample_callback(tmp_path, Writer()), SimpleNamespace(report_to=[])
    bars = lambda notes: f"{V.BAR_START} {notes} {V.BAR_END}".replace("  ", " ")  # noqa: E731
    head = f"{V.PIECE_START} {V.time_signature(4, 4)} {V.TRACK_START} {V.inst(0)} {V.density(1)}"
    silent = text_to_score(f"{head} {bars('')} {V.TRACK_END}", grid=12)
    callback._audio(silent, tmp_path / "silent", 1000, args)
    assert logged == [] and not (tmp_path / "silent.wav").exists() and callback.audio
    sounding = text_to_score(f"{head} {bars(f'{V.note_on(60)} {V.time_delta(12, 12)} {V.note_off(60)}')} {V.TRACK_END}", grid=12)
    callback._audio(sounding, tmp_path / "sounding", 1500, args)
    assert len(logged) == 1 and len(logged[0]) == 1 and (tmp_path / "sounding.wav").is_file()
