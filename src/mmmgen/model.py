"""The GPT-2 that writes MMM text: presets, ``build_model``, ``load_run`` and the sizing helpers.

A run folder (``mmmgen train``) holds the final model (``config.json`` + ``model.safetensors``),
the tokenizer and ``mmmgen.json``: the dataset's codec settings (grid, bars, density edges, genre
labels) that generation must reuse to write the same words.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path

from mmmgen import vocab as V
from mmmgen.config import PRESETS, TRAIN_DEFAULTS, ModelConfig
from mmmgen.errors import MMMGenError

SETTINGS_NAME = "mmmgen.json"
CHINCHILLA_TOKENS_PER_PARAM = 20.0


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


def count_params(n_layer: int, n_embd: int, vocab_size: int, context_length: int) -> int:
    """Parameters of a GPT-2 (tied input/output embeddings), exactly as transformers builds it."""
    per_layer = 12 * n_embd * n_embd + 13 * n_embd  # qkv, proj, 2 MLP matrices, biases, 2 layer norms
    return n_layer * per_layer + vocab_size * n_embd + context_length * n_embd + 2 * n_embd


def flops_per_token(n_layer: int, n_embd: int, vocab_size: int, context_length: int) -> float:
    """Training FLOPs per token (forward + backward): 6 per matmul weight + causal attention.

    The PaLM / nanoGPT estimate ``6N + 12 L d T`` with N the matmul weights (the output head
    included, position embeddings not) and T the attended length.
    """
    matmul_weights = 12 * n_layer * n_embd * n_embd + vocab_size * n_embd
    return 6.0 * matmul_weights + 12.0 * n_layer * n_embd * context_length


def chinchilla(tokens: int, tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM, epochs: float = 1.0) -> dict:
    """Compute-optimal size for ``tokens`` training tokens seen ``epochs`` times (Hoffmann et al. 2022).

    Returns the parameter count, the training FLOPs ``6 N D`` and the tokens trained on.
    """
    seen = tokens * epochs
    params = seen / tokens_per_param
    return {"tokens": int(tokens), "tokens_seen": int(seen), "params": int(params), "flops": 6.0 * params * seen}


def fitting_preset(params: float, vocab_size: int) -> str:
    """The preset whose size is closest (in log scale) to ``params``."""

    def size(name: str) -> int:
        p = PRESETS[name]
        return count_params(p["n_layer"], p["n_embd"], vocab_size, p["context_length"])

    return min(PRESETS, key=lambda name: abs(math.log(size(name) / max(params, 1.0))))


def size_report(dataset_dir: str | Path, tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM, epochs: float = 1.0,
                batch_tokens: int | None = None) -> dict:
    """Token count of a prepared dataset, its Chinchilla-optimal size, steps and the preset that fits.

    Token counts come from ``report.json`` (one token per word; the tokenizer adds none).
    """
    from mmmgen.data import load_report
    from mmmgen.tokenizer import grammar_words

    report = load_report(dataset_dir)
    tokens = int(report["tokens"]["train"])
    vocab_size = len(grammar_words(report)) + len(V.SPECIAL_TOKENS)
    optimal = chinchilla(tokens, tokens_per_param, epochs)
    presets = {}
    for name, p in PRESETS.items():
        step_tokens = batch_tokens or p["batch_size"] * p["context_length"]
        params = count_params(p["n_layer"], p["n_embd"], vocab_size, p["context_length"])
        presets[name] = {
            "params": params,
            "tokens_per_param": round(optimal["tokens_seen"] / params, 3),
            "steps": math.ceil(optimal["tokens_seen"] / step_tokens),
            "flops": 6.0 * params * optimal["tokens_seen"],
        }
    best = fitting_preset(optimal["params"], vocab_size)
    return {
        **optimal,
        "windows": int(report["windows"]["train"]),
        "vocab_size": vocab_size,
        "tokens_per_param_target": tokens_per_param,
        "epochs": epochs,
        "steps": presets[best]["steps"],
        "preset": best,
        "presets": presets,
    }


def format_size_report(r: dict) -> str:
    """A short human summary of ``size_report``."""
    lines = [
        f"train tokens: {r['tokens']:,} in {r['windows']:,} windows (vocabulary {r['vocab_size']})",
        f"compute-optimal (Chinchilla, {r['tokens_per_param_target']:g} tokens/parameter, {r['epochs']:g} epoch(s)): "
        f"{r['params']:,} parameters, {r['flops']:.3g} FLOPs",
        f"preset that fits: {r['preset']} ({r['presets'][r['preset']]['params']:,} parameters, "
        f"{r['steps']:,} steps)",
        "presets:",
    ]
    for name, p in r["presets"].items():
        lines.append(f"  {name:<9} {p['params']:>12,} params  {p['tokens_per_param']:>10.3g} tokens/param  {p['steps']:>8,} steps")
    return "\n".join(lines)


# --- run folders -------------------------------------------------------------------------------
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
    from transformers import GPT2LMHeadModel

    from mmmgen.tokenizer import load_tokenizer

    run_dir = Path(run_dir)
    settings_dir = run_dir if (run_dir / SETTINGS_NAME).is_file() else run_dir.parent
    settings = load_settings(settings_dir)
    if not (run_dir / "config.json").is_file():
        msg = f"no trained model in {run_dir} (training not finished? `mmmgen train --resume` continues it)"
        raise RunError(msg)
    model = GPT2LMHeadModel.from_pretrained(str(run_dir))
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
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest
