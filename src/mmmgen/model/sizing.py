"""How big a model a dataset supports: parameter counts, FLOPs per token, Chinchilla's tokens per parameter.

``size_report`` is ``mmmgen size``: the dataset's tokens, the model sizes they support, and the
preset that fits.
"""

from __future__ import annotations

import math
from pathlib import Path

from mmmgen.config import PRESETS
from mmmgen.text import vocab as V

CHINCHILLA_TOKENS_PER_PARAM = 20.0


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
    from mmmgen.data.prepare import load_report
    from mmmgen.model.tokenizer import grammar_words

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
