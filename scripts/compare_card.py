"""The default model card's comparison section: the tutorial's recipe vs mmmgen's (``make compare``).

    python scripts/compare_card.py runs/compare-tutorial runs/compare-mmmgen CARD.md [CARD.md ...]

Reads each run's ``evaluation.json`` (``mmmgen evaluate --write-card``), ``metrics.json``,
``train_config.yaml`` and ``data_stats.json``, prints a markdown table and puts it into every CARD
under ``## Compared with the tutorial's recipe``.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import yaml

from mmmgen.model.evaluate import put_section


def _load(run: Path) -> dict:
    return {
        "eval": json.loads((run / "evaluation.json").read_text()),
        "metrics": json.loads((run / "metrics.json").read_text()),
        "config": yaml.safe_load((run / "train_config.yaml").read_text()),
        "data": json.loads((run / "data_stats.json").read_text()),
        "codec": json.loads((run / "mmmgen.json").read_text()).get("codec", {}),
    }


def _pct(v: dict | None) -> str:
    if not v or not v.get("tracks"):
        return "n/a"
    return f"{v['valid_tracks']}/{v['tracks']} ({100 * v['validity']:.0f}%)"


def _f(x, fmt: str) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def _batches(config: dict) -> str:
    """How a run filled its steps (``--batching``; runs from before it had only ``packing``)."""
    way = config.get("batching") or ("blocks" if config.get("packing", True) else "windows")
    return {"buckets": "length buckets, one row per window", "blocks": "packed blocks",
            "windows": "one window per example, padded"}.get(way, way)


def table(runs: dict[str, dict]) -> str:
    cols = list(runs)
    rows = [
        ("tokenization", lambda r: f"grid {r['codec'].get('grid')} steps/quarter"),
        ("model", lambda r: f"{r['config']['n_layer']}x{r['config']['n_embd']}, context {r['config']['context_length']}, {r['metrics']['params'] / 1e6:.1f} M params"),
        ("batches", lambda r: f"{_batches(r['config'])}, "
                              f"attention dropout {r['config'].get('attention_dropout')}"),
        ("training time (min)", lambda r: _f(r["metrics"].get("train_runtime_total", 0) / 60, ".1f")),
        ("steps / tokens trained on", lambda r: f"{r['metrics']['steps']:,} / {r['metrics']['train_tokens']:,}"),
        ("padding", lambda r: f"{100 * r['data']['train']['padding_fraction']:.1f}%"),
        ("test loss per note (bits)", lambda r: _f(r["eval"]["likelihood"]["bits_per_note"], ".3f")),
        ("valid tracks, constrained (mmmgen)", lambda r: _pct(r["eval"].get("validity"))),
        ("valid tracks, unconstrained (tutorial's way)", lambda r: _pct(r["eval"].get("free_validity"))),
        ("statistics: mean overlap with the test set", lambda r: _f(r["eval"].get("statistics", {}).get("mean_oa"), ".3f")),
    ]
    features = next(iter(runs.values()))["eval"].get("statistics", {}).get("features", {})
    rows += [(f"  overlap: {name}", lambda r, n=name: _f(r["eval"]["statistics"]["features"][n]["oa"], ".3f")) for name in features]
    lines = ["| | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    lines += ["| " + label + " | " + " | ".join(get(runs[c]) for c in cols) + " |" for label, get in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        sys.exit(__doc__)
    runs = {"tutorial's recipe": _load(Path(argv[0])), "mmmgen's recipe": _load(Path(argv[1]))}
    minutes = {k: r["metrics"].get("train_runtime_total", 0) / 60 for k, r in runs.items()}
    body = (
        "Both trained at the same time on this machine, one CPU core each, for the same wall-clock budget "
        f"({', '.join(f'{k}: {v:.1f} min' for k, v in minutes.items())}), on the same corpus and the same "
        "train/test split of files; each evaluated on its own tokenization of the test files (loss per note "
        "is comparable across tokenizations). The tutorial's recipe: its preset (GPT-2 6x512, context 2048, "
        "batch 8, learning rate 5e-4), its collator (one window per example, dynamic padding) and GPT-2's "
        "dropouts, on its sixteenth-note grid (mmmgen's codec at `--grid 4`, no bar-fill examples). "
        "mmmgen's recipe: `configs/default-model.yaml` on the same corpus without bar-fill examples. "
        "Produced by `make compare`.\n\n" + table(runs)
    )
    print(body)
    for card in map(Path, argv[2:]):
        if card.parent.is_dir():  # e.g. runs/default/README.md when that run exists here
            put_section(card, "Compared with the tutorial's recipe", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
