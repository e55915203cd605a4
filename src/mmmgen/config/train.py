"""Settings of ``mmmgen tokenizer``/``size``/``train``/``sweep``/``evaluate``: model shapes, presets, training."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


# --- tokenizer, model and training (mmmgen tokenizer / train / size) -------------------------
@dataclass
class TokenizerConfig:
    """``mmmgen tokenizer DATASET_DIR OUT_DIR``: WordLevel tokenizer over the dataset's grammar."""

    batch_size: int = field(default=1000, metadata={"help": "Windows per streamed batch while counting words."})

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            msg = f"--batch-size must be at least 1, got {self.batch_size}"
            raise ValueError(msg)


# Presets fill every training field left unset; explicit flags and YAML keys override them.
# "tutorial" is the tutorial's model and recipe; "small" is sized for a 2-core CPU (measured in
# benchmarks/bench_train.py); "debug" trains in seconds for tests and smoke runs.
PRESETS: dict[str, dict] = {
    "tutorial": {
        "n_layer": 6, "n_head": 8, "n_embd": 512, "context_length": 2048,
        "batch_size": 8, "learning_rate": 5e-4, "epochs": 10.0,
        "eval_steps": 500, "save_steps": 500, "logging_steps": 50,
    },
    "small": {
        "n_layer": 4, "n_head": 4, "n_embd": 256, "context_length": 1024,
        "batch_size": 4, "learning_rate": 1e-3, "epochs": 10.0,
        "eval_steps": 200, "save_steps": 200, "logging_steps": 20,
    },
    "debug": {
        "n_layer": 2, "n_head": 2, "n_embd": 32, "context_length": 512,
        "batch_size": 4, "learning_rate": 3e-3, "epochs": 1.0, "warmup_ratio": 0.0,
        "eval_steps": 10, "save_steps": 10, "logging_steps": 5,
        "sample_max_tokens": 48,
    },
}
BATCHING = ("auto", "single", "buckets", "blocks", "windows")  # TrainConfig.batching, see train.build_datasets
COMPILE = ("auto", "yes", "no")  # TrainConfig.compile, see model/speed.py
GPU_PASS_TOKENS = 16384  # --batching auto on a GPU: at least this many tokens a forward pass (batch grown to it)
GPU_LR_SCALE_MAX = 2.0  # ... and the learning rate scaled by sqrt(batch growth), at most by this
# What a preset leaves unset (the tutorial's values where it had one).
TRAIN_DEFAULTS: dict = {
    "gradient_accumulation_steps": 1,
    "warmup_ratio": 0.01,
    "weight_decay": 0.01,
    # GPT-2's 0.1. Its random masks take 15 % of a bf16 CPU step (--profile: 1.14x without them; whole runs
    # 1.13-1.24x in one invocation, within the noise of others) and --dropout 0 ended lower at about 10 epochs,
    # but 23-30 epochs deep it overfitted: 5.91 vs 3.44 nats per note (benchmarks/results/train-cpu.md,
    # cpu-quiet-3 and cpu-quiet-3-long)
    "dropout": 0.1,
    "attention_dropout": 0.0,  # > 0 leaves the fused attention kernel: 1.3-1.9x slower steps (benchmarks/results/train.md)
    "sample_max_tokens": 512,
    "keep_best": False,  # FINETUNE_DEFAULTS: on with --init-from
}

# --buckets-per-step unset: as many buckets as keep a CPU pass at CPU_PASS_TOKENS or more, at most
# BUCKETS_PER_STEP_MAX. At batch 4 x context 1024, 2 buckets of 2,048 tokens trained 1.16x and 1.23x
# faster than 4 of 1,024, test loss +2.5 % and -6 % (chorales, music21's six collections; one 3-minute run
# each, benchmarks/results/train-cpu.md cpu-quiet-3-bps); context 2048 keeps 4 (57-59 % FLOP use there).
CPU_PASS_TOKENS = 2048
BUCKETS_PER_STEP_MAX = 4
SHAPE_FIELDS = ("n_layer", "n_head", "n_embd", "context_length")  # with --init-from: the base model's
# What --init-from sets when unset (before the preset): the shipped model's peak learning rate (1e-3:
# 5 minutes on 50 Nottingham songs reached 4.87 bits per note on held-out songs against 7.56 at 3e-4,
# the same 27 steps each; benchmarks/results/finetune.md), a short warmup, a few epochs (with
# --max-minutes: as many as the budget holds, since the learning rate decays over the clock).
FINETUNE_BUDGET_EPOCHS = 1000.0
FINETUNE_DEFAULTS: dict = {
    "learning_rate": 1e-3,
    "warmup_ratio": 0.02,
    "epochs": 3.0,
    "batch_size": 4,
    "eval_steps": 100,
    "save_steps": 100,
    "logging_steps": 10,
    "keep_best": True,
}


@dataclass
class ModelConfig:
    """The GPT-2's shape (``model/run.py: build_model``). Unset fields come from the preset."""

    n_layer: int | None = field(default=None, metadata={"help": "Transformer layers."})
    n_head: int | None = field(default=None, metadata={"help": "Attention heads (must divide --n-embd)."})
    n_embd: int | None = field(default=None, metadata={"help": "Embedding width."})
    context_length: int | None = field(
        default=None, metadata={"help": "Tokens per training block = the model's positions (tutorial: 2048)."}
    )
    dropout: float | None = field(default=None, metadata={"help": "Residual and embedding dropout (default 0.1, GPT-2's; 0 trains about 1.1-1.2x faster on CPU "
                                                                "but overfits data seen many times). With --init-from: the base model's unless given."})
    attention_dropout: float | None = field(
        default=None,
        metadata={"help": "Attention dropout. GPT-2 uses 0.1, but any value > 0 disables the fused attention kernel (slow); default 0."},
    )


@dataclass
class TrainConfig(ModelConfig):
    """``mmmgen train --dataset D --tokenizer T --output-dir RUN``: GPT-2 from scratch with HF Trainer."""

    dataset: str | None = field(default=None, metadata={"help": "Prepared dataset folder (mmmgen prepare)."})
    tokenizer: str | None = field(default=None, metadata={"help": "Tokenizer folder (mmmgen tokenizer)."})
    output_dir: str | None = field(default=None, metadata={"help": "Run folder (checkpoints, final model, logs, samples)."})
    preset: str = field(
        default="tutorial",
        metadata={"help": "Starting values: tutorial (6x512, context 2048), small (2-core CPU), debug (tiny).", "choices": ["tutorial", "small", "debug"]},
    )
    epochs: float | None = field(default=None, metadata={"help": "Passes over the training blocks."})
    max_steps: int | None = field(default=None, metadata={"help": "Stop after this many optimizer steps (overrides --epochs)."})
    max_minutes: float | None = field(
        default=None,
        metadata={"help": "Wall-clock budget of training (resumes included): stop after this many minutes, with the "
                          "warmup and cosine decay of the learning rate spread over the budget instead of the steps."},
    )
    batch_size: int | None = field(
        default=None, metadata={"help": "Per step over ALL processes (split across data-parallel workers): --context-length "
                                  "blocks of tokens (single, buckets, blocks), or windows with --batching windows."}
    )
    gradient_accumulation_steps: int | None = field(default=None, metadata={"help": "Micro-batches per optimizer step."})
    learning_rate: float | None = field(default=None, metadata={"help": "Peak learning rate (cosine schedule; tutorial 5e-4)."})
    warmup_ratio: float | None = field(default=None, metadata={"help": "Share of steps spent warming up (tutorial 0.01)."})
    weight_decay: float | None = field(default=None, metadata={"help": "AdamW weight decay (tutorial 0.01)."})
    eval_steps: int | None = field(default=None, metadata={"help": "Evaluate (and write a sample) every N steps."})
    save_steps: int | None = field(default=None, metadata={"help": "Save a checkpoint every N steps."})
    logging_steps: int | None = field(default=None, metadata={"help": "Log the training loss every N steps."})
    save_total_limit: int = field(default=3, metadata={"help": "Keep at most this many checkpoints."})
    seed: int = field(default=42, metadata={"help": "Seed of initialization and data order."})
    report_to: str = field(
        default="tensorboard",
        metadata={"help": "Experiment tracker (offline): none, tensorboard or wandb.", "choices": ["none", "tensorboard", "wandb"]},
    )
    resume: bool = field(default=False, metadata={"help": "Continue from the newest complete checkpoint in --output-dir."})
    precision: str = field(
        default="auto",
        metadata={"help": "auto (bf16 on GPUs and CPUs with native bf16, fp16 on older GPUs, else fp32), fp32, bf16, fp16.", "choices": ["auto", "fp32", "bf16", "fp16"]},
    )
    max_cut: float = field(
        default=0.02, metadata={"help": "Fail when more than this share of windows is longer than --context-length (they are cut)."}
    )
    max_train_windows: int | None = field(default=None, metadata={"help": "Use only the first N training windows (smoke runs)."})
    mix: str | None = field(
        default=None,
        metadata={"help": "Windows per collection per epoch (data/mix.py): NAME=SHARE (0 to 1 of the epoch) or NAME=WINDOWS, "
                          "comma-separated, NAME a collection folder or genre; e.g. GROOVE=0.2,LMD-BEATLES=0.25,NOTTINGHAM=0."},
    )
    max_eval_windows: int | None = field(
        default=None,
        metadata={"help": "Evaluate during training on N test windows spread over the split (faster evaluations; "
                          "`mmmgen evaluate` scores the whole split)."},
    )
    sample_tracks: int = field(default=2, metadata={"help": "Tracks of the sample written at each evaluation (0: none)."})
    sample_max_tokens: int | None = field(default=None, metadata={"help": "Token budget of each evaluation sample."})
    sample_temperature: float = field(default=0.75, metadata={"help": "Sampling temperature of evaluation samples."})
    sample_audio: bool = field(default=True, metadata={"help": "Render evaluation samples to WAV and log them as audio."})
    num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes."})
    batching: str = field(
        default="auto",
        metadata={"help": "How windows fill a step; auto: buckets on a GPU; on CPU single, or buckets when the training windows "
                          "are short (a mean under 512 words, benchmarks/results/short_windows.md). single: one window per forward pass, a step accumulates about "
                          "--batch-size x --context-length tokens of random windows (the tutorial's batches without their "
                          "padding). buckets: windows of similar length side by side, one row each "
                          "(--buckets-per-step; for GPUs and short windows, where one window is too little work a pass). blocks: whole windows "
                          "packed end to end into --context-length rows, attention kept inside windows by a "
                          "block-diagonal mask. windows: the tutorial's --batch-size windows per step, padded to the "
                          "longest.", "choices": list(BATCHING)},
    )
    buckets_per_step: int | None = field(
        default=None,
        metadata={"help": "With --batching buckets: a step accumulates gradients over this many buckets (of about "
                          "batch x context / N tokens each, drawn at random), so it sees windows of several lengths; "
                          "1 makes each step one length band (fastest, but learns worse early on). Default: as many as "
                          f"keep a pass at {CPU_PASS_TOKENS} tokens or more, at most {BUCKETS_PER_STEP_MAX} (4 at batch 4 x "
                          "context 2048, 2 at context 1024; on a GPU 4)."},
    )
    packing: bool = field(
        default=True, metadata={"help": "--no-packing: the same as --batching windows (the tutorial's one window per example)."}
    )
    init_from: str | None = field(
        default=None,
        metadata={"help": "Fine-tune: start from this model's weights and tokenizer (default: the shipped model, or a run "
                          "folder) instead of from scratch. The dataset must be prepared with --like the same model; words "
                          "the model lacks are added to its vocabulary. The model shape comes from it, --tokenizer is not "
                          "used, and unset settings take fine-tuning values (learning rate 1e-3, short warmup, with "
                          "--max-minutes as many epochs as the budget holds)."},
    )

    keep_best: bool | None = field(
        default=None,
        metadata={"help": "Evaluate at least once an epoch and end with the weights of the lowest test loss, not the last "
                          "(needs a test split): --keep-best true or false. Default: on with --init-from (a fine-tune on a few songs overfits within "
                          "minutes), off otherwise."},
    )
    threads: int = field(
        default=0,
        metadata={"help": "CPU threads (0: the cores other processes leave free, re-checked every 10 s while training; "
                          "MMMGEN_THREADS sets it for every command). Idle threads sleep (OMP_WAIT_POLICY=PASSIVE)."},
    )
    compile: str = field(
        default="auto",
        metadata={"help": "torch.compile the training forward pass (inductor): yes, no; auto = no (measured slower than "
                          "eager on CPU; unmeasured on GPUs).", "choices": list(COMPILE)},
    )
    profile: bool = field(
        default=False,
        metadata={"help": "Profile a few steps: print tokens/s, FLOP use against the fp32 matmul peak measured in the run, "
                          "and the share of step time per part (matmuls, attention, element-wise, loss, optimizer, "
                          "collation, Python); written to RUN/profile.json."},
    )

    def _gpu_batch(self, scale_lr: bool) -> None:
        """The GPU default (issue 26; not yet measured on a GPU): passes of ``GPU_PASS_TOKENS`` tokens or more,
        the learning rate scaled with the square root of the batch (Adam's rule), at most ``GPU_LR_SCALE_MAX`` x."""
        if self.buckets_per_step is None:
            self.buckets_per_step = BUCKETS_PER_STEP_MAX
        batch = max(self.batch_size, math.ceil(GPU_PASS_TOKENS * self.buckets_per_step / self.context_length))
        if scale_lr:
            self.learning_rate *= min(GPU_LR_SCALE_MAX, math.sqrt(batch / self.batch_size))
        self.batch_size = batch

    def __post_init__(self) -> None:
        unset = {f for f in ("batch_size", "learning_rate") if getattr(self, f) is None}
        if self.preset not in PRESETS:
            msg = f"--preset must be one of {sorted(PRESETS)}, got {self.preset!r}"
            raise ValueError(msg)
        if self.init_from:  # fine-tuning values first; the shape is the base model's (model/finetune.py)
            if self.epochs is None and self.max_minutes:
                self.epochs = FINETUNE_BUDGET_EPOCHS  # the clock decides: the learning rate decays over the whole budget
            for name, value in FINETUNE_DEFAULTS.items():
                if getattr(self, name) is None:
                    setattr(self, name, value)
        for name, value in {**TRAIN_DEFAULTS, **PRESETS[self.preset]}.items():
            if getattr(self, name) is None and not (self.init_from and name in SHAPE_FIELDS):
                setattr(self, name, value)
        if self.init_from and self.tokenizer:
            msg = "--tokenizer cannot be combined with --init-from (the model's own tokenizer is used and extended)"
            raise ValueError(msg)
        for name in ("dataset", "output_dir") if self.init_from else ("dataset", "tokenizer", "output_dir"):
            if not getattr(self, name):
                msg = f"--{name.replace('_', '-')} is required"
                raise ValueError(msg)
        positive = ("n_layer", "n_head", "n_embd", "context_length", "batch_size", "gradient_accumulation_steps", "buckets_per_step",
                    "eval_steps", "save_steps", "logging_steps")
        for name in positive:
            if getattr(self, name) is not None and getattr(self, name) < 1:
                msg = f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
                raise ValueError(msg)
        if self.n_embd is not None and self.n_head is not None and self.n_embd % self.n_head:
            msg = f"--n-head ({self.n_head}) must divide --n-embd ({self.n_embd})"
            raise ValueError(msg)
        if self.max_minutes is not None and self.max_minutes <= 0:
            msg = f"--max-minutes must be positive, got {self.max_minutes}"
            raise ValueError(msg)
        if self.max_steps is not None and self.max_steps < 1:
            msg = f"--max-steps must be at least 1, got {self.max_steps}"
            raise ValueError(msg)
        if not 0 <= self.warmup_ratio < 1 or not 0 <= self.max_cut <= 1:
            msg = f"--warmup-ratio must be in [0, 1) and --max-cut in [0, 1], got {self.warmup_ratio}, {self.max_cut}"
            raise ValueError(msg)
        if not self.packing:
            self.batching = "windows"
        if self.batching == "auto":  # a GPU: resolved here; a CPU: by train() from the windows' length (batching.py)
            import torch

            if torch.cuda.is_available():
                self.batching = "buckets"
                if "batch_size" in unset:
                    self._gpu_batch("learning_rate" in unset)
        if self.batching not in BATCHING:
            msg = f"--batching must be one of {', '.join(BATCHING)}, got {self.batching!r}"
            raise ValueError(msg)
        if self.report_to not in ("none", "tensorboard", "wandb"):
            msg = f"--report-to must be none, tensorboard or wandb, got {self.report_to!r}"
            raise ValueError(msg)
        if self.threads < 0 or self.compile not in COMPILE:
            msg = f"--threads must be >= 0 and --compile one of {', '.join(COMPILE)}, got {self.threads}, {self.compile!r}"
            raise ValueError(msg)
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            msg = f"--precision must be auto, fp32, bf16 or fp16, got {self.precision!r}"
            raise ValueError(msg)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SizeConfig:
    """``mmmgen size --dataset D``: token count, compute-optimal model size and the preset that fits."""

    dataset: str | None = field(default=None, metadata={"help": "Prepared dataset folder (mmmgen prepare)."})
    tokens_per_param: float = field(default=20.0, metadata={"help": "Chinchilla ratio of training tokens to parameters."})
    epochs: float = field(default=1.0, metadata={"help": "Passes over the data (up to ~4 repeat nearly as well as fresh data)."})
    batch_tokens: int | None = field(default=None, metadata={"help": "Tokens per optimizer step (default: the preset's batch x context)."})

    def __post_init__(self) -> None:
        if not self.dataset:
            msg = "--dataset is required"
            raise ValueError(msg)
        if self.tokens_per_param <= 0 or self.epochs <= 0:
            msg = "--tokens-per-param and --epochs must be positive"
            raise ValueError(msg)


# --- hyperparameter sweeps (mmmgen sweep) ------------------------------------------------------
@dataclass
class SweepConfig:
    """``mmmgen sweep SWEEP.yaml --out DIR``: search ``mmmgen train`` settings (W&B sweep YAML, Optuna)."""

    out: str | None = field(default=None, metadata={"help": "Sweep folder: trial-NNNN run folders, sweep.db, results.csv, best.yaml, sweep.png."})
    trials: int | None = field(
        default=None,
        metadata={"help": "Trials in the whole study, all workers together (default: the file's run_cap, else 10); a rerun tops a stopped sweep up to N."},
    )
    storage: str | None = field(
        default=None, metadata={"help": "Optuna RDB URL shared by workers, e.g. postgresql://user@host/db (default: sqlite:///OUT/sweep.db)."}
    )
    study: str | None = field(
        default=None, metadata={"help": "Study name (default: the file's name: or its file name); with --backend wandb, a sweep id to join."}
    )
    backend: str = field(
        default="optuna",
        metadata={"help": "optuna (local, offline) or wandb (W&B sweeps; needs wandb and a login).", "choices": ["optuna", "wandb"]},
    )
    prune: str = field(
        default="auto",
        metadata={"help": "Stop hopeless trials early on the eval metric: auto (hyperband when the file has early_terminate), none, median, hyperband.",
                  "choices": ["auto", "none", "median", "hyperband"]},
    )
    sampler_seed: int | None = field(
        default=None, metadata={"help": "Seed of the sampler (reproducible single-worker sweeps; give each worker its own)."}
    )

    def __post_init__(self) -> None:
        if not self.out:
            msg = "--out is required"
            raise ValueError(msg)
        if self.trials is not None and self.trials < 1:
            msg = f"--trials must be at least 1, got {self.trials}"
            raise ValueError(msg)
        if self.backend not in ("optuna", "wandb") or self.prune not in ("auto", "none", "median", "hyperband"):
            msg = f"--backend must be optuna or wandb and --prune auto, none, median or hyperband, got {self.backend!r}, {self.prune!r}"
            raise ValueError(msg)


# --- evaluation (mmmgen evaluate) ---------------------------------------------------------------
@dataclass
class EvaluateConfig:
    """``mmmgen evaluate --model RUN (--dataset D | --midi DIR)``: likelihood, validity, statistics."""

    model: str | None = field(default=None, metadata={"help": "Run folder of a trained model; default: the model shipped with mmmgen (also when unset); latest: the newest under runs/."})
    dataset: str | None = field(default=None, metadata={"help": "Prepared dataset folder (mmmgen prepare): its test split is evaluated."})
    midi: str | None = field(
        default=None, metadata={"help": "Folder of MIDI files, encoded with the run's codec settings (instead of --dataset)."}
    )
    genres: str | None = field(
        default=None, metadata={"help": "With --midi: CSV path,genre (paths relative to the folder); genres the model does not know become OTHER."}
    )
    samples: int = field(default=8, metadata={"help": "Pieces to generate for validity and statistics (0: likelihood only)."})
    tracks: int = field(default=4, metadata={"help": "Tracks per generated piece."})
    free_samples: int = field(
        default=0,
        metadata={"help": "Also generate N pieces the tutorial's way (plain model.generate up to TRACK_END, no grammar "
                          "constraints) and report their share of valid tracks: how well the model itself learned the grammar."},
    )
    bars: int | None = field(default=None, metadata={"help": "Bars per generated piece (default: as trained)."})
    temperature: float = field(default=0.85, metadata={"help": "Sampling temperature of the generated pieces."})
    seed: int = field(default=0, metadata={"help": "Seed of the generated pieces."})
    batch_size: int = field(default=8, metadata={"help": "Packed blocks per forward pass while scoring the likelihood."})
    max_windows: int | None = field(default=None, metadata={"help": "Use only the first N windows (smoke runs)."})
    out: str | None = field(default=None, metadata={"help": "Write the results as JSON to this file (default: print only)."})
    write_card: bool = field(
        default=False, metadata={"help": "Also write RUN/evaluation.json and an '## Evaluation' section into RUN/README.md."}
    )
    genre: str | None = field(
        default=None, metadata={"help": "Genre of the generated pieces (default: a genre the model knows, at random for each piece)."}
    )

    def __post_init__(self) -> None:
        if self.samples < 0 or self.free_samples < 0 or self.tracks < 1 or self.batch_size < 1:
            msg = f"--samples must be >= 0, --tracks and --batch-size >= 1; got {self.samples}, {self.tracks}, {self.batch_size}"
            raise ValueError(msg)
        if (self.bars is not None and self.bars < 1) or (self.max_windows is not None and self.max_windows < 1):
            msg = f"--bars and --max-windows must be at least 1, got {self.bars}, {self.max_windows}"
            raise ValueError(msg)
