"""Typed settings of each pipeline stage; their fields are the command-line flags.

Every dataclass here is parsed by ``transformers.HfArgumentParser`` in ``cli.py`` from flags or a
YAML file. Checks live in ``__post_init__`` and raise ``ValueError`` with a clear message.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field


@dataclass
class CodecConfig:
    """How MIDI becomes MMM text (stored with each dataset so later stages use the same)."""

    grid: int = field(
        default=12,
        metadata={"help": "Time steps per quarter note. 12 holds sixteenths and triplets exactly."},
    )
    bars: int = field(default=8, metadata={"help": "Bars per window (one training example)."})
    hop: int | None = field(
        default=None, metadata={"help": "Bars between window starts (default: --bars, no overlap)."}
    )
    min_notes: int = field(default=1, metadata={"help": "Drop windows with fewer notes."})
    density_levels: int = field(
        default=10, metadata={"help": "DENSITY levels (quantile bins of notes per track)."}
    )

    def __post_init__(self) -> None:
        if self.grid < 1 or 480 % self.grid:
            msg = f"--grid must divide 480 (e.g. 4, 12, 24), got {self.grid}"
            raise ValueError(msg)
        if self.bars < 1:
            msg = f"--bars must be at least 1, got {self.bars}"
            raise ValueError(msg)
        if self.hop is not None and self.hop < 1:
            msg = f"--hop must be at least 1, got {self.hop}"
            raise ValueError(msg)
        if self.density_levels < 1:
            msg = f"--density-levels must be at least 1, got {self.density_levels}"
            raise ValueError(msg)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PrepareConfig(CodecConfig):
    """``mmmgen prepare MIDI_DIR OUT_DIR``: MIDI folder -> windows -> HF dataset."""

    genres: str | None = field(
        default=None, metadata={"help": "CSV with columns path,genre (paths relative to MIDI_DIR)."}
    )
    test_size: float = field(default=0.1, metadata={"help": "Share of source files in the test split."})
    seed: int = field(default=42, metadata={"help": "Seed of the train/test split by file."})
    transpose: int = field(
        default=0,
        metadata={"help": "Augment with every transposition in [-N, N] semitones (never drums)."},
    )
    num_proc: int | None = field(default=None, metadata={"help": "Worker processes (default: all cores)."})
    max_files: int | None = field(default=None, metadata={"help": "Use at most this many files."})
    infill_prob: float = field(
        default=0.0,
        metadata={"help": "Add a bar-fill (inpainting) variant beside this share of windows (MMM FILL_IN text)."},
    )
    like: str | None = field(
        default=None,
        metadata={"help": "Encode with a trained model's codec settings (grid, bars, density levels and edges) so the data "
                          "speaks its language, for `mmmgen train --init-from` the same model: default (the shipped model) "
                          "or a run folder. Overrides --grid, --bars and --density-levels."},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.test_size < 1:
            msg = f"--test-size must be in [0, 1), got {self.test_size}"
            raise ValueError(msg)
        if not 0 <= self.infill_prob <= 1:
            msg = f"--infill-prob must be in [0, 1], got {self.infill_prob}"
            raise ValueError(msg)
        if not 0 <= self.transpose <= 24:
            msg = f"--transpose must be in [0, 24], got {self.transpose}"
            raise ValueError(msg)
        if self.num_proc is None:
            self.num_proc = os.cpu_count() or 1
        if self.num_proc < 1:
            msg = f"--num-proc must be at least 1, got {self.num_proc}"
            raise ValueError(msg)

    def codec(self) -> CodecConfig:
        """The codec part of these settings."""
        return CodecConfig(self.grid, self.bars, self.hop, self.min_notes, self.density_levels)


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
# What a preset leaves unset (the tutorial's values where it had one).
TRAIN_DEFAULTS: dict = {
    "gradient_accumulation_steps": 1,
    "warmup_ratio": 0.01,
    "weight_decay": 0.01,
    "dropout": 0.1,
    "attention_dropout": 0.0,  # > 0 leaves the fused attention kernel: 1.3-1.9x slower steps (benchmarks/results/train.md)
    "sample_max_tokens": 512,
}

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
    dropout: float | None = field(default=None, metadata={"help": "Residual and embedding dropout (GPT-2: 0.1)."})
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
        metadata={"help": "How windows fill a step; auto: single on CPU, buckets on a GPU. single: one window per forward pass, a step accumulates about "
                          "--batch-size x --context-length tokens of random windows (the tutorial's batches without their "
                          "padding; fastest on CPU). buckets: windows of similar length side by side, one row each "
                          "(--buckets-per-step; for GPUs, where one window is too little work). blocks: whole windows "
                          "packed end to end into --context-length rows, attention kept inside windows by a "
                          "block-diagonal mask. windows: the tutorial's --batch-size windows per step, padded to the "
                          "longest.", "choices": list(BATCHING)},
    )
    buckets_per_step: int = field(
        default=4,
        metadata={"help": "With --batching buckets: a step accumulates gradients over this many buckets (of about "
                          "batch x context / N tokens each, drawn at random), so it sees windows of several lengths; "
                          "1 makes each step one length band (fastest, but learns worse early on)."},
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

    def __post_init__(self) -> None:
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
        if self.batching == "auto":  # resolved here, so the run folder records the way it trained
            import torch

            self.batching = "buckets" if torch.cuda.is_available() else "single"
        if self.batching not in BATCHING:
            msg = f"--batching must be one of {', '.join(BATCHING)}, got {self.batching!r}"
            raise ValueError(msg)
        if self.report_to not in ("none", "tensorboard", "wandb"):
            msg = f"--report-to must be none, tensorboard or wandb, got {self.report_to!r}"
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


# --- generation (mmmgen generate / mmmgen infill / mmmgen app) --------------------------------
@dataclass
class PieceConfig:
    """What ``generate`` and ``infill`` share: the model, sampling and the files written."""

    model: str | None = field(default=None, metadata={"help": "Run folder of a trained model; latest: the newest under runs/ (default: the model shipped with mmmgen)."})
    out: str = field(default="out", metadata={"help": "Output folder (piece.mid, piece.wav, piece.png, piece.txt)."})
    temperature: float = field(default=0.85, metadata={"help": "Sampling temperature."})
    top_k: int = field(default=0, metadata={"help": "Keep only the k most likely words (0: off)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling threshold (1: off)."})
    seed: int | None = field(default=None, metadata={"help": "Seed for reproducible output (default: fresh randomness)."})
    tempo: float = field(default=120.0, metadata={"help": "Tempo in BPM (a rendering setting)."})
    format: str = field(default="mid,wav,png,txt", metadata={"help": "Outputs: any of mid,wav,png,txt (mp3/ogg need ffmpeg)."})


@dataclass
class GenerateConfig(PieceConfig):
    """``mmmgen generate``: a piece, one track at a time, written as MIDI/audio/picture/text."""

    genre: str | None = field(default=None, metadata={"help": "Genre word (e.g. BACH); default: a genre the model knows, at random."})
    tracks: int = field(default=4, metadata={"help": "New tracks to generate."})
    instrument: list[str] = field(
        default_factory=list,
        metadata={"help": "Instrument of each new track in order: GM program number, GM name or DRUMS (the rest: model's choice).", "nargs": "+"},
    )
    density: int | None = field(default=None, metadata={"help": "DENSITY level of every new track (default: model's choice)."})
    bars: int | None = field(default=None, metadata={"help": "Bars per track (default: as trained; longer: the first window, then extended; at most 256)."})
    time_signature: str = field(default="4_4", metadata={"help": "Meter, e.g. 4_4, 3_4, 6_8."})
    prompt: str | None = field(default=None, metadata={"help": "Start from a MIDI file (all its bars, up to 256) or MMM text; new tracks are added to it."})

    def __post_init__(self) -> None:
        if self.tracks < 0 or (self.tracks == 0 and not self.prompt):
            msg = f"--tracks must be at least 1 (or 0 with --prompt), got {self.tracks}"
            raise ValueError(msg)
        if self.bars is not None and self.bars < 1:
            msg = f"--bars must be at least 1, got {self.bars}"
            raise ValueError(msg)


@dataclass
class AppConfig:
    """``mmmgen app``: the web app on a trained model."""

    model: str | None = field(default=None, metadata={"help": "Run folder of a trained model; latest: the newest under runs/ (default: the model shipped with mmmgen)."})
    host: str = field(default="127.0.0.1", metadata={"help": "Address to bind (127.0.0.1: this machine only)."})
    port: int = field(default=7860, metadata={"help": "Port."})
    concurrency: int = field(default=1, metadata={"help": "Generations at once (1 is fastest overall on a CPU)."})
    queue_size: int = field(default=16, metadata={"help": "Requests that may wait; more are turned away with a message."})
    cache_minutes: float = field(default=10.0, metadata={"help": "Served files (audio, MIDI, pictures) older than this are deleted."})


@dataclass
class InfillConfig(PieceConfig):
    """``mmmgen infill``: regenerate chosen bars of one track of a piece (MMM bar-fill)."""

    input: str = field(default="", metadata={"help": "The piece: MMM text (first line; e.g. a piece.txt from generate) or a MIDI file."})
    track: int = field(default=1, metadata={"help": "Track to rewrite, 1-based in text order."})
    bars: str = field(default="all", metadata={"help": "Bars to rewrite: A-B (1-based, inclusive), A, or all."})

    def __post_init__(self) -> None:
        if not self.input:
            msg = "--input is required"
            raise ValueError(msg)
        if self.track < 1:
            msg = f"--track is 1-based, got {self.track}"
            raise ValueError(msg)
        self.bar_range()  # fail early on a bad --bars

    def bar_range(self) -> list[int] | None:
        """0-based bar indexes, or None for all."""
        text = self.bars.strip().lower()
        if text == "all":
            return None
        first, _, last = text.partition("-")
        try:
            a, b = int(first), int(last or first)
        except ValueError:
            msg = f"--bars must be A-B, A or all, got {self.bars!r}"
            raise ValueError(msg) from None
        if not 1 <= a <= b:
            msg = f"--bars must be 1-based with A <= B, got {self.bars!r}"
            raise ValueError(msg)
        return list(range(a - 1, b))


@dataclass
class ExtendConfig(PieceConfig):
    """``mmmgen extend``: N more bars on every track of a piece (MMM text or MIDI); its bars stay as they are."""

    bars: int | None = field(default=None, metadata={"help": "New bars on every track (default: one trained window, e.g. 8)."})

    def __post_init__(self) -> None:
        if self.bars is not None and self.bars < 1:
            msg = f"--bars must be at least 1, got {self.bars}"
            raise ValueError(msg)


@dataclass
class TakesConfig:
    """Several takes at once (``mmmgen generate`` / ``mmmgen infill``; ``mmmgen extend``)."""

    takes: int | None = field(
        default=None,
        metadata={"help": "Write N takes, decoded as one batch: DIR/take-1/piece.* .. DIR/take-N/piece.* and DIR/takes.csv "
                  "(take, seed, log_likelihood_per_note); take k uses --seed + k - 1 (default: one piece in DIR, as without takes)."},
    )
    rank: bool = field(default=False, metadata={"help": "With --takes: number the take folders best first, by the model's log-likelihood per note."})

    def __post_init__(self) -> None:
        if self.takes is not None and not 1 <= self.takes <= 64:
            msg = f"--takes must be in 1..64, got {self.takes}"
            raise ValueError(msg)
        if self.rank and self.takes is None:
            msg = "--rank needs --takes N"
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

    model: str | None = field(default=None, metadata={"help": "Run folder of a trained model; latest: the newest under runs/ (default: the model shipped with mmmgen)."})
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


# --- sharing a model (mmmgen space) --------------------------------------------------------------
SPACE_COLORS = ("red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray")  # what Spaces accept


@dataclass
class SpaceConfig:
    """``mmmgen space RUN OUT``: a folder that runs as a Hugging Face Space (or a Docker image)."""

    title: str = field(default="MMM music generator", metadata={"help": "The Space's title (README front matter)."})
    emoji: str = field(default="🎹", metadata={"help": "The Space's emoji."})
    color_from: str = field(default="indigo", metadata={"help": "First colour of the Space's card.", "choices": list(SPACE_COLORS)})
    color_to: str = field(default="purple", metadata={"help": "Second colour of the Space's card.", "choices": list(SPACE_COLORS)})
    license: str = field(default="mit", metadata={"help": "Licence id of the Space (e.g. mit, apache-2.0, cc-by-4.0); mind the training data's."})
    short_description: str = field(
        default="Multitrack music, one instrument at a time", metadata={"help": "One line under the title (at most 60 characters)."}
    )
    max_mb: float = field(default=1000.0, metadata={"help": "Refuse a model larger than this many megabytes."})

    def __post_init__(self) -> None:
        if self.color_from not in SPACE_COLORS or self.color_to not in SPACE_COLORS:
            msg = f"--color-from and --color-to must be one of {', '.join(SPACE_COLORS)}, got {self.color_from!r}, {self.color_to!r}"
            raise ValueError(msg)
        if not self.title.strip() or len(self.short_description) > 60:
            msg = f"--title must not be empty and --short-description at most 60 characters, got {len(self.short_description)}"
            raise ValueError(msg)
        if self.max_mb <= 0:
            msg = f"--max-mb must be positive, got {self.max_mb}"
            raise ValueError(msg)


# --- musical controls (mmmgen generate / mmmgen infill) -----------------------------------------
@dataclass
class ControlsConfig:
    """Musical controls every new track (or bar) obeys; drum tracks are exempt."""

    scale: str | None = field(default=None, metadata={"help": "Scale lock TONIC:MODE, e.g. C:major, A:minor, D:dorian, E:minor-pentatonic (modes: major, minor, the church modes, major-/minor-pentatonic)."})
    pitch_range: str | None = field(default=None, metadata={"help": "Lowest-highest MIDI pitch of new notes, e.g. 48-72."})
    max_polyphony: int | None = field(default=None, metadata={"help": "Most notes sounding at once in a track."})
    min_note: float | None = field(default=None, metadata={"help": "Shortest note in quarter notes (0.25: a sixteenth)."})
    max_note: float | None = field(default=None, metadata={"help": "Longest note in quarter notes (4: a whole note in 4/4)."})

