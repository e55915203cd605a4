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

With ``--init-from MODEL`` the run starts from a trained model's weights and tokenizer instead
(``model/finetune.py``: codec check, new words added, embedding rows grown).

The run folder explains itself: ``train_config.yaml``, ``command.txt``, ``versions.json``, the
tokenizer, ``mmmgen.json`` (codec settings for generation), ``checkpoint-N/`` (safetensors),
``logs/`` (TensorBoard), ``samples/`` (MIDI written at each evaluation), the final model,
``metrics.json`` and a model card ``README.md``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import re
import shlex
import shutil
import sys
import time
from pathlib import Path

from mmmgen.config import TrainConfig
from mmmgen.model.batching import (
    GROUP_NAMES,
    TrainError,
    build_datasets,
    make_collator,
    passes_per_step,
    resolve_auto_batching,
)
from mmmgen.model.speed import compile_wanted, shape_multiple, speed_setup, timed_collator
from mmmgen.model.trainer import CLOCK_NAME, _make_callbacks, _make_trainer_class, note_on_ids

log = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


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

    from mmmgen.model.run import save_settings

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
    base = settings.get("base_model")
    origin = "trained from scratch by `mmmgen train`" if base is None else f"fine-tuned from `{base['name']}` by `mmmgen train --init-from`"
    return f"""# MMM GPT-2 ({cfg.n_layer} layers x {cfg.n_embd}, {metrics.get('params', 0):,} parameters)

A GPT-2 {origin} on MMM text (multitrack windows of
{settings['codec'].get('bars')} bars, grid {settings['codec'].get('grid')} steps per quarter).
{_base_lines(base)}
## Data
- dataset: `{settings['dataset']}`
- train: {stats['train']['windows']:,} windows, {stats['train']['tokens']:,} tokens in {stats['train']['blocks']:,} {GROUP_NAMES[cfg.batching]} (padding {stats['train']['padding_fraction']:.1%})
- test: {stats.get('test', {}).get('windows', 0):,} windows
- genres: {', '.join(settings.get('genre_labels', []))}

## Model and training
- n_layer {cfg.n_layer}, n_head {cfg.n_head}, n_embd {cfg.n_embd}, context {cfg.context_length} ({f"preset `{cfg.preset}`" if base is None else "the base model's shape"})
- {metrics.get('steps', 0):,} steps, {metrics.get('epochs', 0):.2f} epochs, batch {cfg.batch_size}{f" ({stats['train']['windows_per_step']} windows a step)" if 'windows_per_step' in stats['train'] else ''} x {cfg.gradient_accumulation_steps}, lr {cfg.learning_rate:g} cosine, warmup {cfg.warmup_ratio:g}, weight decay {cfg.weight_decay:g}, precision {metrics.get('precision')}
- {metrics.get('train_tokens', 0):,} tokens trained on in {hours:.2f} h of training

## Metrics
| metric | value |
|---|---|
{rows}

## Use
```python
from mmmgen.model.run import load_run
model, tokenizer, settings = load_run("{cfg.output_dir}")
```
or plain transformers: `GPT2LMHeadModel.from_pretrained(RUN)`, `AutoTokenizer.from_pretrained(RUN)`.
Settings, command line and library versions: `train_config.yaml`, `command.txt`, `versions.json`.
"""


def _base_lines(base: dict | None) -> str:
    if base is None:
        return ""
    added = ", ".join(f"`{w}`" for w in base["added_words"]) or "none"
    return (f"\n## Base model\n- `{base['path']}` (`--init-from {base['name']}`)\n"
            f"- words added to its vocabulary ({base['vocab_size_before']} -> {base['vocab_size']}): {added}\n")


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
        dataloader_pin_memory=torch.cuda.is_available(),  # page-locked batches copy to a GPU faster; no use on CPU
        ddp_find_unused_parameters=False,
        use_cpu=not torch.cuda.is_available(),  # also what makes torchrun / accelerate use gloo on CPU
        disable_tqdm=False,
        torch_compile=compile_wanted(cfg),  # model/speed.py: the training forward pass through inductor
        logging_nan_inf_filter=not torch.cuda.is_available(),  # its per-pass isnan() waits for the GPU
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

    from mmmgen.data.prepare import load_report
    from mmmgen.model.run import build_model, run_settings
    from mmmgen.model.tokenizer import grammar_words, load_tokenizer, missing_words

    _quiet_packing_warning()
    run = Path(cfg.output_dir)
    report = load_report(cfg.dataset)
    base = None
    if cfg.init_from:  # fine-tuning: the base model's shape and (extended) tokenizer
        from mmmgen.model.finetune import load_base

        base = load_base(cfg, report)
        tokenizer = base.tokenizer
    else:
        tokenizer = load_tokenizer(cfg.tokenizer)
    gaps = missing_words(tokenizer, grammar_words(report))
    if gaps:
        log.warning("the tokenizer lacks %d grammar words (e.g. %s): the model can never write them", len(gaps), gaps[:3])
    main = int(os.environ.get("RANK", "0")) == 0
    resume_from = _resume_point(run, cfg.resume, main, cfg)
    precision = resolve_precision(cfg.precision)
    resolve_auto_batching(cfg, report)
    args = training_arguments(cfg, run, precision)
    with args.main_process_first(desc="tokenizing"):
        data = build_datasets(cfg, tokenizer, run / "cache", args.world_size)
    args.gradient_accumulation_steps = cfg.gradient_accumulation_steps * passes_per_step(cfg, data.stats["train"], args.world_size)
    if data.test is None:
        log.warning("the dataset has no test split: no evaluation, no samples")
        args.eval_strategy = IntervalStrategy.NO
    settings = run_settings(report, cfg.dataset, cfg.context_length)
    if base is not None:
        from mmmgen.model.finetune import base_settings

        settings = base_settings(settings, base)
    if main:
        _write_run_files(run, cfg, tokenizer, settings, data.stats)
        s = data.stats["train"]
        log.info("train: %d windows, %d tokens in %d %s (padding %.1f%%), precision %s", s["windows"],
                 s["tokens"], s["blocks"], GROUP_NAMES[cfg.batching], 100 * s["padding_fraction"], precision)
    if resume_from is not None and (run / "metrics.json").exists() and _finished(resume_from, cfg):
        log.info("%s already finished (%s): nothing left to train", run, resume_from.name)
        return run
    set_seed(cfg.seed)  # the initial weights depend on the seed alone
    if base is not None:
        from mmmgen.model.finetune import base_model

        model = base_model(base, cfg.dropout, cfg.attention_dropout)
    else:
        model = build_model(cfg, len(tokenizer), tokenizer)
    trainer = _build_trainer(cfg, args, model, tokenizer, data, settings, run, main, resume_from)
    best = _keep_best(cfg, trainer, data)
    for callback in [*speed_setup(cfg, trainer.args, run, main), *callbacks, *([best] if best else [])]:
        trainer.add_callback(callback)
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    final = _final_eval(trainer) if data.test is not None else {}
    if best is not None and best.restore(model, trainer.state.global_step):
        final = trainer.evaluate()
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
            **({"kept_step": trainer.state.global_step if best.best_step is None else best.best_step} if best else {}),
        }
        (run / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (run / "README.md").write_text(_model_card(cfg, metrics, data.stats, settings))
        shutil.rmtree(run / "cache", ignore_errors=True)
    return run


def _keep_best(cfg: TrainConfig, trainer, data):
    """``--keep-best``: the callback that keeps the best weights, with evaluations at least once an epoch."""
    if not cfg.keep_best:
        return None
    if data.test is None:
        log.warning("--keep-best needs a test split (mmmgen prepare --test-size): the last weights are kept")
        return None
    from mmmgen.model.trainer import make_keep_best_callback

    args = trainer.args
    per_epoch = max(1, len(data.train) // (args.gradient_accumulation_steps * args.world_size))
    args.eval_steps = min(args.eval_steps, per_epoch)
    log.info("--keep-best: evaluating every %d steps; the weights of the lowest test loss are kept", args.eval_steps)
    return make_keep_best_callback()


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
    collator = make_collator(cfg.batching, tokenizer.pad_token_id, shape_multiple(cfg.context_length, args.bf16 or args.fp16))
    if cfg.profile:
        collator = timed_collator(collator)
    trainer = _make_trainer_class()(
        model=model, args=args, train_dataset=data.train, eval_dataset=data.test,
        data_collator=collator, processing_class=tokenizer, callbacks=callbacks,
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

