"""``bench_train.py --parts runs,neighbour,finetune``: whole ``mmmgen train`` runs for a wall-clock budget (issue 26).

Each run is the command a user types, in a fresh process, so thread choice, OpenMP waiting and
``torch.compile`` count as they do for users. Recipes on the same prepared dataset and model shape:

* ``tutorial``: ``configs/tutorial-recipe.yaml`` at the shape (one window per example padded to its
  batch's longest, GPT-2's dropouts, fp32), this tree's code;
* ``today``: ``mmmgen train`` as it was at ``--baseline-ref`` (the code before issue 26, extracted
  with ``git archive``; its defaults: all cores, OpenMP's default spin-waiting, precision auto);
* ``mmmgen``: this tree's defaults (``--compile auto``: off below 20 minutes);
* ``mmmgen-single``: this tree with ``--batching single`` (what ``auto`` chose on CPU before short windows
  went to buckets: ``mmmgen.model.batching.SHORT_WINDOW_WORDS``);
* ``mmmgen-compile``: this tree with ``--compile yes``;
* ``mmmgen-dropout0`` / ``mmmgen-dropout0.1``: this tree with ``--dropout 0`` / ``0.1`` (residual and
  embedding dropout: its random masks took 15 % of a step, ``--profile``);
* ``mmmgen-bps2``: this tree with ``--buckets-per-step 2`` (passes of twice the tokens).

``neighbour`` trains ``today`` and ``mmmgen`` again beside a busy loop (``python -c 'while True:
pass'``, one process): the slowdown against the run alone. ``finetune``: ``--init-from`` for
``--finetune-minutes`` on ``--finetune-songs`` Nottingham songs with a test split (``FINETUNE_RECIPES``:
today's code on v1, this tree on v1 and on the shipped model): optimizer steps, useful tokens/s, the
step whose weights were kept, and bits per note of the held-out songs (``mmmgen evaluate --midi``).

Useful tokens/s = the run's ``train_tokens / train_runtime``; FLOP use = 6 x matrix weights x useful
tokens/s over the fp32 2048 x 2048 matmul rate measured at the start of the benchmark.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml
from _env import ROOT

BASELINE_REF = "b4f79d6"  # main before issue 26 (training throughput)
SHAPES = {  # name: flags; the shipped model's shape (4x256, context 1024) and the context-2048 example
    "shipped": ["--preset", "small", "--context-length", "1024"],  # the context said: the tutorial recipe's preset has 2048
    "ctx2048": ["--preset", "small", "--context-length", "2048"],
}
RECIPES = ("tutorial", "today", "mmmgen", "mmmgen-single", "mmmgen-compile", "mmmgen-dropout0", "mmmgen-dropout0.1",
           "mmmgen-bps2")
EXTRA_FLAGS = {"mmmgen-compile": ["--compile", "yes"], "mmmgen-single": ["--batching", "single"],
               "mmmgen-dropout0": ["--dropout", "0"], "mmmgen-dropout0.1": ["--dropout", "0.1"],
               "mmmgen-bps2": ["--buckets-per-step", "2"]}


def baseline_src(work: Path, ref: str) -> Path:
    """``src`` of ``ref`` extracted under ``work`` (once)."""
    out = work / f"baseline-{ref}"
    if not (out / "src" / "mmmgen").is_dir():
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as f:
            subprocess.run(["git", "archive", ref, "src"], cwd=ROOT, stdout=f, check=True)
            f.seek(0)
            with tarfile.open(fileobj=f) as tar:
                tar.extractall(out, filter="data")
    return out / "src"


def clean_env(src: Path) -> dict:
    """The environment of a user's shell: no thread or OpenMP settings of ours, ``src`` on the path."""
    drop = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "MMMGEN_THREADS", "GOMP_SPINCOUNT")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def mmmgen(args: list[str], src: Path, log: Path, timeout: float | None = None) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        proc = subprocess.run([sys.executable, "-m", "mmmgen", *args], env=clean_env(src), cwd=ROOT, stdout=f,
                              stderr=subprocess.STDOUT, timeout=timeout, check=False)
    if proc.returncode:
        msg = f"mmmgen {' '.join(args[:3])} failed ({proc.returncode}); log {log}:\n{log.read_text()[-2000:]}"
        raise SystemExit(msg)


class BusyNeighbour:
    """A busy loop in another process while the block runs."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def recipe_args(recipe: str, shape: list[str]) -> list[str]:
    if recipe == "tutorial":
        return ["--config", str(ROOT / "configs" / "tutorial-recipe.yaml"), "--n-layer", "4", "--n-head", "4",
                "--n-embd", "256", *shape[2:]]
    return [*shape, *EXTRA_FLAGS.get(recipe, [])]


def flops_per_token(run: Path) -> float:
    c = json.loads((run / "config.json").read_text())
    return 6.0 * (12 * c["n_layer"] * c["n_embd"] ** 2 + c["vocab_size"] * c["n_embd"])


def train_run(recipe: str, dataset: str, tokenizer: str, shape: list[str], minutes: float, work: Path, src: Path,
              peak: float, tag: str) -> dict:
    """One ``mmmgen train --max-minutes`` run; its steps, useful tokens/s, FLOP use and test loss per note."""
    run = work / "runs" / tag
    if not (run / "metrics.json").is_file():
        args = ["train", "--dataset", dataset, "--tokenizer", tokenizer, "--output-dir", str(run), "--max-minutes",
                str(minutes), "--epochs", "1000", "--report-to", "none", "--sample-tracks", "0", "--max-eval-windows",
                "300", "--eval-steps", "100000", "--save-steps", "100000", *recipe_args(recipe, shape)]
        started = time.time()
        mmmgen(args, src, work / "logs" / f"{tag}.log")
        wall = time.time() - started
    else:
        wall = None
    m = json.loads((run / "metrics.json").read_text())
    rate = m["train_tokens"] / max(m["train_runtime"], 1e-9)
    log_text = (work / "logs" / f"{tag}.log").read_text() if (work / "logs" / f"{tag}.log").is_file() else ""
    threads = next((ln.split("CPU threads:")[1].split(" cores")[0].strip() for ln in log_text.splitlines()
                    if "CPU threads:" in ln), "torch's default (all cores)")
    return {"recipe": recipe, "steps": m["steps"], "train_seconds": m["train_runtime"], "train_tokens": m["train_tokens"],
            "useful_tokens_per_s": round(rate, 1), "flop_use": round(rate * flops_per_token(run) / peak, 3) if peak else None,
            "test_loss_per_note": m.get("eval_loss_per_note"), "precision": m.get("precision"), "threads": threads,
            "wall_seconds": None if wall is None else round(wall, 1)}


def runs_part(datasets: dict, shapes: list[str], minutes: float, work: Path, ref: str, peak: float,
              recipes=RECIPES, neighbour: bool = False) -> dict:
    """Every recipe on every dataset and shape, alone; with ``neighbour``, today and mmmgen beside a busy loop too."""
    srcs = {"today": baseline_src(work, ref)}
    out = {}
    for label, (dataset, tokenizer) in datasets.items():
        for shape in shapes:
            key = f"{label} | {shape}"
            slug = f"{label}-{shape}"
            row = out[key] = {"alone": {}, "neighbour": {}}
            for recipe in recipes:
                src = srcs.get(recipe, ROOT / "src")
                print(f"[{time.strftime('%H:%M:%S')}] {key}: {recipe} alone, {minutes} min", flush=True)
                row["alone"][recipe] = train_run(recipe, dataset, tokenizer, SHAPES[shape], minutes, work, src, peak,
                                                 f"{slug}-{recipe}")
            if neighbour:
                for recipe in ("today", "mmmgen"):
                    print(f"[{time.strftime('%H:%M:%S')}] {key}: {recipe} beside a busy loop, {minutes} min", flush=True)
                    with BusyNeighbour():
                        r = train_run(recipe, dataset, tokenizer, SHAPES[shape], minutes, work, srcs.get(recipe, ROOT / "src"),
                                      peak, f"{slug}-{recipe}-neighbour")
                    alone = row["alone"].get(recipe)
                    if alone:
                        r["slowdown"] = round(alone["useful_tokens_per_s"] / max(r["useful_tokens_per_s"], 1e-9), 2)
                    row["neighbour"][recipe] = r
    return out


FINETUNE_RECIPES = {  # name: (source, the base model's name in that source, prepare --like); today's code calls v1 "default"
    "today": ("baseline", "default", "default-v1"),
    "mmmgen-v1": ("here", "default-v1", "default-v1"),
    "mmmgen": ("here", "default", "default"),
}


def finetune_part(work: Path, ref: str, minutes: float, songs: int, styles: Path) -> dict:
    """``--init-from`` for ``minutes`` on ``songs`` Nottingham songs, prepared as a user does (``--like`` the base,
    a test split of 10 % of the songs): today's code on v1, this tree on v1 (the same model: steps compare)
    and on the shipped model. Steps, useful tokens/s, the step whose weights were kept, held-out bits per note."""
    sys.path.insert(0, str(ROOT / "src"))
    from bench_finetune import link_folder, split_songs

    from mmmgen.data.prepare import find_midi_files

    fw = work / "finetune"
    train, held_out = split_songs(find_midi_files(styles / "nottingham"), 0.1, 0)
    held_csv = link_folder(held_out, fw / "nottingham" / "held-out", "NOTTINGHAM")
    genres = link_folder(train[:songs], fw / "nottingham" / f"train-{songs}", "NOTTINGHAM")
    out = {"songs": songs, "held_out_songs": len(held_out), "minutes": minutes, "test_size": 0.1}
    for recipe, (where, base, like) in FINETUNE_RECIPES.items():
        src = baseline_src(work, ref) if where == "baseline" else ROOT / "src"
        dataset = fw / f"data-{like}"
        if not (dataset / "report.json").is_file():
            mmmgen(["prepare", str(genres.with_suffix("")), str(dataset), "--like", like, "--genres", str(genres),
                    "--test-size", "0.1", "--num-proc", "2"], ROOT / "src", fw / "logs" / f"prepare-{like}.log")
        run = fw / f"run-{recipe}"
        if not (run / "metrics.json").is_file():
            print(f"[{time.strftime('%H:%M:%S')}] fine-tune {recipe} (--init-from {base}), {minutes} min", flush=True)
            mmmgen(["train", "--init-from", base, "--dataset", str(dataset), "--output-dir", str(run), "--max-minutes",
                    str(minutes), "--report-to", "none", "--sample-tracks", "0"], src, fw / "logs" / f"train-{recipe}.log")
        ev = fw / f"eval-{recipe}.json"
        if not ev.is_file():
            mmmgen(["evaluate", "--model", str(run), "--midi", str(fw / "nottingham" / "held-out"), "--genres", str(held_csv),
                    "--samples", "0", "--out", str(ev)], ROOT / "src", fw / "logs" / f"eval-{recipe}.log")
        m = json.loads((run / "metrics.json").read_text())
        batching = yaml.safe_load((run / "train_config.yaml").read_text())["batching"]  # as resolved by train
        out[recipe] = {"base": base, "steps": m["steps"], "train_tokens": m["train_tokens"], "train_seconds": m["train_runtime"],
                       "useful_tokens_per_s": round(m["train_tokens"] / max(m["train_runtime"], 1e-9), 1),
                       "kept_step": m.get("kept_step", m["steps"]), "batching": batching,
                       "bits_per_note": json.loads(ev.read_text())["likelihood"]["bits_per_note"]}
    for recipe in ("mmmgen-v1", "mmmgen"):
        out[recipe]["steps_vs_today"] = round(out[recipe]["steps"] / max(out["today"]["steps"], 1), 2)
    out["steps_ratio"] = out["mmmgen-v1"]["steps_vs_today"]  # the same base model as today's
    return out


def render_runs(r: dict) -> list[str]:
    lines = [f"## Whole `mmmgen train` runs, {r['minutes']:g} min each (fp32 matmul peak {r['peak_gflops']:.1f} GFLOP/s; "
             f"today = {r['baseline_ref']})", ""]
    for key, row in r["rows"].items():
        lines += [f"### {key}", "", "| recipe | beside | steps | useful tokens/s | vs today | FLOP use | test loss/note | threads |",
                  "|---|---|---:|---:|---:|---:|---:|---|"]
        today = row["alone"].get("today", {}).get("useful_tokens_per_s")
        for where in ("alone", "neighbour"):
            for name, x in row[where].items():
                vs = f"{x['useful_tokens_per_s'] / today:.2f}x" if today else ""
                beside = "busy loop" if where == "neighbour" else "-"
                loss = "n/a" if x["test_loss_per_note"] is None else f"{x['test_loss_per_note']:.3f}"
                lines.append(f"| {name} | {beside} | {x['steps']} | {x['useful_tokens_per_s']:.0f} | {vs} | "
                             f"{x['flop_use'] or 0:.0%} | {loss} | {x['threads'] or ''} |")
        slow = {k: v.get("slowdown") for k, v in row["neighbour"].items()}
        if slow:
            lines += ["", "Slowdown beside a busy loop (alone / beside; target <= 2x): "
                      + ", ".join(f"{k} {v}x" for k, v in slow.items() if v)]
        lines.append("")
    return lines


def render_finetune(f: dict) -> list[str]:
    if "mmmgen-v1" not in f:  # runs before the v1 / v2 rows
        return [f"## Fine-tune: `--init-from default`, {f['songs']} Nottingham songs, {f['minutes']:g} min", "",
                "| recipe | steps | train tokens | held-out bits/note |", "|---|---:|---:|---:|",
                *(f"| {k} | {f[k]['steps']} | {f[k]['train_tokens']:,} | {f[k]['bits_per_note']:.3f} |" for k in ("today", "mmmgen")),
                "", f"Steps vs today: **{f['steps_ratio']:.2f}x** (target >= 1.8x).", ""]
    rows = [f"| {k} | `{r['base']}` | {r['batching']} | {r['steps']} | {r['train_tokens']:,} | {r['useful_tokens_per_s']:.0f} | "
            f"{r['kept_step']} | {r['bits_per_note']:.3f} | {r.get('steps_vs_today', 1.0):.2f}x |"
            for k, r in f.items() if isinstance(r, dict)]
    return [f"## Fine-tune: `--init-from`, {f['songs']} Nottingham songs (a test split of {f['test_size']:.0%} of them), "
            f"{f['minutes']:g} min; held-out: {f['held_out_songs']} other songs", "",
            "| recipe | base | batching | steps | train tokens | useful tokens/s | weights kept from step | held-out bits/note | steps vs today |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|", *rows, "",
            f"Steps vs today on the same base model (v1): **{f['steps_ratio']:.2f}x** (target >= 1.8x). "
            "A step holds batch x context tokens: 4 x 1,024 for v1, 4 x 2,048 for the shipped v2.", ""]


# label: mmmgen corpus --collections. "v2-data" is the default model's data: link WORK/data/v2-data/{corpus,dataset,
# tokenizer} to make model's data/corpus, data/model/dataset and data/model/tokenizer (its corpus needs --from CORPORA).
CORPORA = {"chorales": "BACH", "multi-collection": "all", "v2-data": "all,open"}


def prepare_data(work: Path, sample: int | None, labels: list[str]) -> dict:
    """The music21 chorales and the multi-collection corpus (``make model``'s way), prepared and tokenized once."""
    out = {}
    for label in labels:
        collections = CORPORA[label]
        folder = work / "data" / label
        corpus, dataset, tokenizer = folder / "corpus", folder / "dataset", folder / "tokenizer"
        size = ["--sample", str(sample)] if sample else []
        if not (corpus / "genres.csv").is_file():
            print(f"[{time.strftime('%H:%M:%S')}] corpus {label}", flush=True)
            mmmgen(["corpus", str(corpus), "--collections", collections, *size], ROOT / "src", work / "logs" / f"corpus-{label}.log")
        if not (dataset / "report.json").is_file():
            print(f"[{time.strftime('%H:%M:%S')}] prepare {label}", flush=True)
            mmmgen(["prepare", str(corpus), str(dataset), "--genres", str(corpus / "genres.csv"), "--infill-prob", "0.1"],
                   ROOT / "src", work / "logs" / f"prepare-{label}.log")
        if not (tokenizer / "tokenizer.json").is_file():
            mmmgen(["tokenizer", str(dataset), str(tokenizer)], ROOT / "src", work / "logs" / f"tokenizer-{label}.log")
        out[label] = (str(dataset), str(tokenizer))
    return out
