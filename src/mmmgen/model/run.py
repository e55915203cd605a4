"""The GPT-2 that writes MMM text: presets, ``build_model``, ``load_run``, ``ship_run`` and generators over runs.

A run folder (``mmmgen train``) holds the final model (``config.json`` + ``model.safetensors``),
the tokenizer and ``mmmgen.json``: the dataset's codec settings (grid, bars, density edges, genre
labels) that generation must reuse to write the same words.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from mmmgen.config import PRESETS, TRAIN_DEFAULTS, ModelConfig
from mmmgen.errors import MMMGenError
from mmmgen.generate.sampling import GenerationError
from mmmgen.generate.song import Generator
from mmmgen.text import vocab as V

SETTINGS_NAME = "mmmgen.json"


class RunError(MMMGenError):
    """A run folder that is missing or incomplete."""


def preset_config(name: str) -> ModelConfig:
    """The model shape of a preset (``tutorial``, ``small``, ``debug``)."""
    if name not in PRESETS:
        msg = f"unknown preset {name!r}; choose from {sorted(PRESETS)}"
        raise MMMGenError(msg)
    values = {**TRAIN_DEFAULTS, **PRESETS[name]}
    return ModelConfig(**{f.name: values.get(f.name) for f in fields(ModelConfig)})


def gpt2_config(cfg: ModelConfig, vocab_size: int, pad_token_id=None, bos_token_id=None, eos_token_id=None):
    """The ``GPT2Config`` for a model config (dropouts default as in ``config.TRAIN_DEFAULTS``)."""
    from transformers import GPT2Config

    dropout = TRAIN_DEFAULTS["dropout"] if cfg.dropout is None else cfg.dropout
    attention_dropout = TRAIN_DEFAULTS["attention_dropout"] if cfg.attention_dropout is None else cfg.attention_dropout
    return GPT2Config(
        vocab_size=vocab_size,
        n_positions=cfg.context_length,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=attention_dropout,
        activation_function="gelu_pytorch_tanh",  # GPT-2's gelu_new as one fused op: same values, faster
        pad_token_id=pad_token_id,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
    )


def build_model(cfg: ModelConfig, vocab_size: int, tokenizer=None):
    """A freshly initialized ``GPT2LMHeadModel`` of the given shape.

    Args:
        cfg: Layers, heads, width, context length and dropouts (``TrainConfig`` works too).
        vocab_size: Tokenizer vocabulary size.
        tokenizer: When given, its ``[PAD]``, ``PIECE_START`` (bos) and ``TRACK_END`` (eos, the
            tutorial generates one track at a time) ids go into the model config.
    """
    from transformers import GPT2LMHeadModel

    ids = {}
    if tokenizer is not None:
        vocab = tokenizer.get_vocab()
        ids = {
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": vocab.get(V.PIECE_START),
            "eos_token_id": vocab.get(V.TRACK_END),
        }
    model = GPT2LMHeadModel(gpt2_config(cfg, vocab_size, **ids))
    model.loss_type = "ForCausalLM"  # what GPT-2 uses anyway; saying so silences a warning
    return model


def run_settings(report: dict, dataset_dir: str | Path, context_length: int) -> dict:
    """What generation needs to write words the model knows (saved as ``RUN/mmmgen.json``)."""
    return {
        "format": 1,
        "dataset": str(Path(dataset_dir).resolve()),
        "codec": report.get("codec", {}),
        "density_edges": report.get("density_edges", []),
        "genre_labels": report.get("genre_labels", [V.OTHER_GENRE]),
        "genres": report.get("genres", {}),
        "context_length": context_length,
    }


def save_settings(run_dir: str | Path, settings: dict) -> Path:
    path = Path(run_dir) / SETTINGS_NAME
    path.write_text(json.dumps(settings, indent=2))
    return path


def load_settings(run_dir: str | Path) -> dict:
    path = Path(run_dir) / SETTINGS_NAME
    if not path.is_file():
        msg = f"not an mmmgen run folder (no {SETTINGS_NAME}): {run_dir}"
        raise RunError(msg)
    return json.loads(path.read_text())


def load_run(run_dir: str | Path):
    """The final model, tokenizer and settings of a run folder (or of one of its checkpoints).

    Returns:
        ``(model, tokenizer, settings)``: a ``GPT2LMHeadModel`` in eval mode, a fast tokenizer and
        the dict of ``mmmgen.json`` (``codec`` with ``grid``/``bars``, ``density_edges``, ``genre_labels``).
    """
    import torch
    from transformers import GPT2LMHeadModel

    from mmmgen.model.tokenizer import load_tokenizer

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        msg = f"model not found: {run_dir} (pass a run folder of `mmmgen train`, default or latest)"
        raise RunError(msg)
    settings_dir = run_dir if (run_dir / SETTINGS_NAME).is_file() else run_dir.parent
    if not (settings_dir / SETTINGS_NAME).is_file():  # name the folder as given, not its parent
        msg = f"not an mmmgen run folder (no {SETTINGS_NAME}): {run_dir}"
        raise RunError(msg)
    settings = load_settings(settings_dir)
    if not (run_dir / "config.json").is_file():
        msg = f"no trained model in {run_dir} (training not finished? `mmmgen train --resume` continues it)"
        raise RunError(msg)
    model = GPT2LMHeadModel.from_pretrained(str(run_dir), dtype=torch.float32)  # fp16 weights (shipped) computed in fp32
    model.eval()
    tokenizer = load_tokenizer(run_dir if (run_dir / "tokenizer.json").is_file() else settings_dir)
    return model, tokenizer, settings


SHIP_SKIP = frozenset({"training_args.bin", "command.txt"})  # a pickle, and local paths


def ship_run(run_dir: str | Path, dest: str | Path, max_mb: float = 25.0) -> Path:
    """Copy a run's final model (its top-level files: weights, tokenizer, settings, card, metrics)
    to ``dest``, replacing what was there; checkpoints, logs and samples stay behind.

    Raises:
        RunError: no trained model in ``run_dir``, or the copy would exceed ``max_mb`` megabytes.
    """
    import shutil

    run_dir, dest = Path(run_dir), Path(dest)
    load_settings(run_dir)
    if not (run_dir / "model.safetensors").is_file():
        msg = f"no final model.safetensors in {run_dir} (training not finished?)"
        raise RunError(msg)
    files = [p for p in sorted(run_dir.iterdir()) if p.is_file() and p.name not in SHIP_SKIP and not p.name.startswith(".")]
    size = sum(p.stat().st_size for p in files) / 1e6
    if size > max_mb:
        msg = f"{run_dir}: the final model is {size:.1f} MB, over the {max_mb:g} MB limit"
        raise RunError(msg)
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for p in files:
        shutil.copy2(p, tmp / p.name)
    portable_paths(tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def portable_paths(model_dir: str | Path, root: str | Path | None = None) -> None:
    """A shipped model names its dataset as the trainer typed it, not by the training machine's absolute path.

    ``mmmgen.json``'s ``dataset`` (and the same text in ``README.md``, the model card) becomes the
    path relative to ``root`` (default: the working directory) when it lies under it, else the
    folder's name: ``/home/me/project/data/model/dataset`` -> ``data/model/dataset``.
    """
    model_dir = Path(model_dir)
    settings = load_settings(model_dir)
    where = settings.get("dataset")
    if not where or not Path(where).is_absolute():
        return
    path, base = Path(where), Path(root or Path.cwd()).resolve()
    short = str(path.relative_to(base)) if path.is_relative_to(base) else path.name
    settings["dataset"] = short
    save_settings(model_dir, settings)
    card = model_dir / "README.md"
    if card.is_file():
        card.write_text(card.read_text().replace(where, short))


# --- generators over run folders (used by the CLI, the app and evaluate) ---------------------------
def run_genres(settings: dict) -> list[str] | None:
    """The genres a run was trained on (``mmmgen.json``), without the catch-all OTHER; None if none."""
    return [g for g in settings.get("genre_labels", []) if g != V.OTHER_GENRE] or None


def generator_for(model, tokenizer, settings: dict) -> Generator:
    """A ``Generator`` that writes the words of a run's settings (grid, density levels, genres)."""
    codec = settings.get("codec", {})
    return Generator(model, tokenizer, grid=codec.get("grid", 12), density_levels=codec.get("density_levels", 10),
                     genres=run_genres(settings), window=codec.get("bars", 8), density_edges=settings.get("density_edges"))


def generator_from_run(run_dir) -> tuple[Generator, dict]:
    """A ``Generator`` over a trained run folder, and the run's settings (``mmmgen.json``)."""
    from mmmgen.model.run import load_run

    model, tokenizer, settings = load_run(run_dir)
    return generator_for(model, tokenizer, settings), settings


def default_model_dir():
    """The model shipped with the package (``mmmgen/resources/default_model``), or None when absent."""
    from mmmgen.data.prepare import shipped_model_path

    path = shipped_model_path()
    return path if (path / "config.json").is_file() else None


def find_run(model: str | None, search=("runs", "models")):
    """The run folder to use.

    ``model``: a run folder; ``latest`` for the newest local run under ``runs/`` or ``models/``;
    ``default`` for the model shipped with the package; None for the shipped model (or, in a
    checkout without it, the newest local run).
    """
    from pathlib import Path

    from mmmgen.data.prepare import DEFAULT_MODEL
    from mmmgen.model.run import SETTINGS_NAME

    if model == DEFAULT_MODEL:
        if (shipped := default_model_dir()) is None:
            msg = "the shipped model is missing from this install; pass --model RUN (a run folder of `mmmgen train`)"
            raise GenerationError(msg)
        return shipped
    if model and model != "latest":
        from mmmgen.data.prepare import is_shipped_name, shipped_model_path

        return shipped_model_path(model) if is_shipped_name(model) else Path(model)
    if model is None and (shipped := default_model_dir()) is not None:
        return shipped
    runs = [p.parent for d in search if Path(d).is_dir() for p in Path(d).glob(f"**/{SETTINGS_NAME}")]
    runs = [r for r in runs if (r / "config.json").is_file()]
    if not runs:
        msg = (
            "no trained model found: pass --model RUN, or train one first, e.g.\n"
            "  mmmgen corpus data/corpus --collections BACH\n"
            "  mmmgen prepare data/corpus data/dataset --genres data/corpus/genres.csv\n"
            "  mmmgen tokenizer data/dataset data/tokenizer\n"
            "  mmmgen train --dataset data/dataset --tokenizer data/tokenizer --output-dir runs/bach --preset small"
        )
        raise GenerationError(msg)
    return max(runs, key=lambda r: (r / "config.json").stat().st_mtime)
