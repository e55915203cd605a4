"""The default model on a GPU machine in one go, inside a wall-clock budget (issue 20).

    python scripts/gpu_default_model.py --out OUT --work /tmp/work --budget 550 \\
        [--corpus PRE_EXPORTED_CORPUS] [--v1 src/mmmgen/resources/default_model]

1. data: ``make model``'s recipe (``mmmgen corpus --collections all --sample 1000``, ``prepare
   --infill-prob 0.1``, ``tokenizer``), on all cores, starting from ``--corpus`` (works exported
   already are kept: the corpus manifest);
2. training: ``configs/default-model-gpu.yaml`` for the rest of the budget (``--max-minutes``);
   the checkpoint with the best evaluation loss (300 test windows) is kept beside the final model;
3. benchmark: ``benchmarks/bench_train.py`` recipes, the tutorial's recipe vs ``mmmgen train``'s GPU path on
   the tutorial's model size, ``--bench-seconds`` of training each;
4. evaluation: ``mmmgen evaluate`` of the new model(s) and of ``--v1`` on the whole test split;
5. OUT gets at most 8 files: fp16 weights (``v2-final.safetensors``, ``v2-best.safetensors``), the run
   folder without weights and checkpoints (``run.tar.gz``), the dataset, tokenizer and corpus lists
   (``data.tar.gz``: unpack it and pass ``--data`` to skip the data phase next time),
   ``bench_train_gpu.json``, ``evals.json`` (and the caller's log).

For v2 (issue 28), prepare the data here with ``make model`` (music21 + the open collections, the chord
track in half the files) and carry ``data/model/{dataset,tokenizer}`` as ``--data``: the device machine
reaches no network and has no copy of ``../shared/corpora``; exporting there covers music21 only.

Every phase has a deadline; a phase that fails or runs late is logged and the rest goes on.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
T0 = time.time()


def log(msg: str) -> None:
    print(f"[gpu +{time.time() - T0:5.0f}s] {msg}", flush=True)


def left(deadline: float) -> float:
    return deadline - time.time()


def sh(args: list[str], deadline: float, name: str) -> int:
    """Run a command until ``deadline`` (then kill it); its output goes to ours. Returns the exit code (-9: late)."""
    log(f"{name}: {' '.join(map(str, args))}")
    start = time.time()
    proc = subprocess.Popen([str(a) for a in args], start_new_session=False)
    try:
        rc = proc.wait(timeout=max(1.0, left(deadline)))
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        rc = -9
    log(f"{name}: exit {rc} after {time.time() - start:.0f}s")
    return rc


def mmmgen(*args) -> list[str]:
    return [sys.executable, "-m", "mmmgen", *map(str, args)]


def genres_from_manifest(corpus: Path) -> int:
    """``genres.csv`` from the works exported so far (a corpus export stopped at its deadline)."""
    manifest = json.loads((corpus / "manifest.json").read_text())
    rows = sorted((rel, name) for name, state in manifest.items() for rel in state.get("done", {}).values()
                  if (corpus / rel).exists())
    with open(corpus / "genres.csv", "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([("path", "genre"), *rows])
    return len(rows)


def environment() -> dict:
    import importlib.metadata as md

    import torch

    info = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "cpus": os.cpu_count()}
    for name in ("transformers", "datasets", "pyarrow", "tokenizers", "accelerate", "safetensors", "symusic", "music21"):
        try:
            info[name] = md.version(name)
        except md.PackageNotFoundError:
            info[name] = None
    return info


def best_checkpoint(run: Path) -> tuple[Path | None, dict]:
    """The saved checkpoint with the lowest evaluation loss, and every ``step: eval_loss``."""
    states = sorted(run.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    if not states:
        return None, {}
    history = json.loads(states[-1].read_text()).get("log_history", [])
    evals = {int(e["step"]): e["eval_loss"] for e in history if "eval_loss" in e}
    saved = {int(p.parent.name.split("-")[1]): p.parent for p in states}
    candidates = {s: v for s, v in evals.items() if s in saved}
    if not candidates:
        return None, evals
    step = min(candidates, key=candidates.get)
    return saved[step], evals


def as_run(checkpoint: Path, run: Path, dest: Path) -> Path:
    """A run folder for a checkpoint (its weights, the run's tokenizer, settings and card)."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in run.iterdir():
        if p.is_file() and p.name != "model.safetensors":
            shutil.copy2(p, dest / p.name)
    for name in ("model.safetensors", "config.json", "generation_config.json"):
        if (checkpoint / name).exists():
            shutil.copy2(checkpoint / name, dest / name)
    return dest


def save_fp16(run: Path, dest: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = {k: v.half().contiguous() for k, v in load_file(str(run / "model.safetensors")).items()}
    save_file(tensors, str(dest), metadata={"format": "pt"})
    log(f"{dest.name}: {dest.stat().st_size / 2**20:.1f} MiB")


def main(argv=None) -> int:
    global T0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--work", default="/tmp/mmmgen-gpu")
    p.add_argument("--budget", type=float, default=550, help="Seconds for everything, packaging included.")
    p.add_argument("--start", type=float, default=None, help="Epoch seconds the budget counts from (default: now).")
    p.add_argument("--corpus", default=None, help="A corpus folder exported already (copied, then completed).")
    p.add_argument("--data", default=None, help="A folder with dataset/ and tokenizer/ built already (an earlier "
                                                "run's data.tar.gz unpacked): no data phase.")
    p.add_argument("--sample", type=int, default=1000)
    p.add_argument("--collections", default="all")
    p.add_argument("--prepare-args", default="--chords --chords-share 0.5", help="Extra `mmmgen prepare` flags (make model's).")
    p.add_argument("--v1", default=str(ROOT / "src/mmmgen/resources/default_model"))
    p.add_argument("--config", default=str(ROOT / "configs/default-model-gpu.yaml"))
    p.add_argument("--bench-seconds", type=float, default=60)
    p.add_argument("--bench-preset", default="tutorial")
    p.add_argument("--data-seconds", type=float, default=200, help="Deadline of corpus + prepare + tokenizer.")
    p.add_argument("--tail-seconds", type=float, default=75, help="Kept after training for evaluation and packaging.")
    p.add_argument("--eval-samples", type=int, default=8)
    p.add_argument("--train-minutes", type=float, default=None, help="At most this much training (default: the rest of the budget).")
    p.add_argument("--train-args", default="", help="Extra `mmmgen train` flags (CPU smoke tests: a smaller model).")
    a = p.parse_args(argv)
    T0 = a.start or time.time()
    end = T0 + a.budget
    out, work = Path(a.out), Path(a.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    procs = str(max(1, (os.cpu_count() or 2) - 1))
    summary: dict = {"budget_s": a.budget}
    try:
        summary["env"] = environment()
        log(json.dumps(summary["env"]))
        if shutil.which("nvidia-smi"):
            subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm", "--format=csv"],
                           check=False)

        # 1. data
        corpus, dataset, tokenizer = work / "corpus", work / "dataset", work / "tokenizer"
        data_end = T0 + a.data_seconds
        if a.corpus and not corpus.exists():
            shutil.copytree(a.corpus, corpus)
        if a.data and not dataset.exists():
            shutil.copytree(Path(a.data) / "dataset", dataset)
            shutil.copytree(Path(a.data) / "tokenizer", tokenizer)
        corpus_end = data_end - 45  # prepare and tokenizer need their share
        if (dataset / "dataset_dict.json").exists() and (tokenizer / "tokenizer.json").exists():
            log("data: reusing the dataset and tokenizer of an earlier run on this machine")
            corpus_end = time.time()
        rc = 0 if corpus_end <= time.time() else sh(mmmgen("corpus", corpus, "--collections", a.collections, "--sample", a.sample, "--num-proc", procs),
                corpus_end, "corpus")
        if rc != 0:
            log(f"corpus export stopped (exit {rc}); using the {genres_from_manifest(corpus)} files exported")
        if (corpus / "genres.csv").exists():
            summary["corpus_files"] = sum(1 for _ in open(corpus / "genres.csv")) - 1
        if not (tokenizer / "tokenizer.json").exists():
            rc = sh(mmmgen("prepare", corpus, dataset, "--genres", corpus / "genres.csv", "--infill-prob", "0.1",
                           "--num-proc", procs, *a.prepare_args.split()), data_end + 30, "prepare")
            rc = rc or sh(mmmgen("tokenizer", dataset, tokenizer), data_end + 45, "tokenizer")
        if rc != 0:
            raise RuntimeError("no dataset: nothing to benchmark or train")
        summary["data_ready_s"] = round(time.time() - T0)

        # 2. training for the rest of the budget, the benchmark's share and the tail put aside
        run = work / "run"
        bench_reserve = 2 * a.bench_seconds + 50  # two recipes, each with start-up and a test evaluation
        minutes = (end - a.tail_seconds - bench_reserve - time.time() - 25) / 60  # 25 s: start-up, tokenizing, the final save
        minutes = min(minutes, a.train_minutes or minutes)
        summary["train_minutes"] = round(minutes, 2)
        if minutes > 0.3:
            sh(mmmgen("train", "--config", a.config, "--dataset", dataset, "--tokenizer", tokenizer, "--output-dir", run,
                      "--max-minutes", f"{minutes:.2f}", *a.train_args.split()), time.time() + 60 * minutes + 60, "train")
        # the best evaluated checkpoint, when it beats the final model on the same 300 windows
        candidates = {}
        if (run / "model.safetensors").exists():
            candidates["v2-final"] = run
            final = json.loads((run / "metrics.json").read_text()).get("eval_loss", float("inf"))
            best, evals = best_checkpoint(run)
            summary["evals_300"] = evals
            if best is not None and evals.get(int(best.name.split("-")[1]), float("inf")) < final:
                candidates["v2-best"] = as_run(best, run, work / "run-best")
                log(f"best evaluation at {best.name} ({evals[int(best.name.split('-')[1])]:.4f} < final {final:.4f})")
        for name, folder in candidates.items():  # the weights out first: whatever runs late below
            save_fp16(folder, out / f"{name}.safetensors")

        # 3. benchmark (the tutorial's model size, same data, same GPU)
        bench_json = work / "bench_train_gpu.json"
        bench_end = min(end - a.tail_seconds, time.time() + bench_reserve)
        sh([sys.executable, ROOT / "benchmarks/bench_train.py", "--parts", "recipes", "--dataset", dataset,
            "--tokenizer", tokenizer, "--preset", a.bench_preset, "--batching", "buckets", "--seconds", a.bench_seconds,
            "--label", "music21 corpus, all collections (make model's data), GPU", "--out", bench_json],
           bench_end, "bench")
        if bench_json.exists():
            shutil.copy2(bench_json, out / "bench_train_gpu.json")

        # 4. evaluation on the whole test split
        evals_all = {}
        for name, folder in [*candidates.items(), ("v1", Path(a.v1))]:
            samples = a.eval_samples if left(end) > 40 + 15 * len(candidates) else 0
            target = work / f"eval-{name}.json"
            sh(mmmgen("evaluate", "--model", folder, "--dataset", dataset, "--samples", samples, "--out", target),
               min(end - 15, time.time() + 90), f"evaluate {name}")
            if target.exists():
                evals_all[name] = json.loads(target.read_text())
            (out / "evals.json").write_text(json.dumps(evals_all, indent=1))
    except Exception as exc:  # keep whatever exists: the packaging below still runs
        log(f"FAILED: {type(exc).__name__}: {exc}")
        summary["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        # 5. packaging (small files; the weights went out above)
        summary["total_s"] = round(time.time() - T0)
        run = work / "run"
        with tarfile.open(out / "run.tar.gz", "w:gz") as tar:
            if run.is_dir():
                for p in run.iterdir():
                    if p.is_file() and p.suffix != ".safetensors" and p.name not in ("optimizer.pt", "training_args.bin"):
                        tar.add(p, arcname=f"run/{p.name}")
                if (run / "logs").is_dir():
                    tar.add(run / "logs", arcname="run/logs")
                states = sorted(run.glob("checkpoint-*/trainer_state.json"), key=lambda q: int(q.parent.name.split("-")[1]))
                if states:
                    tar.add(states[-1], arcname="run/last_trainer_state.json")
            for extra in ("bench_train_gpu.md",):
                if (work / extra).exists():
                    tar.add(work / extra, arcname=extra)
            info = out / "summary.json"
            info.write_text(json.dumps(summary, indent=1))
            tar.add(info, arcname="summary.json")
            info.unlink()
        dataset, corpus = work / "dataset", work / "corpus"
        with tarfile.open(out / "data.tar.gz", "w:gz") as tar:
            if dataset.is_dir():
                tar.add(dataset, arcname="dataset")  # train split too (a few MB): a later run can skip the data phase
            if (work / "tokenizer").is_dir():
                tar.add(work / "tokenizer", arcname="tokenizer")
            for name in ("genres.csv", "manifest.json"):
                if (corpus / name).exists():
                    tar.add(corpus / name, arcname=f"corpus/{name}")
        log(f"done: {json.dumps(summary)[:2000]}")
        log("out: " + ", ".join(f"{q.name} {q.stat().st_size / 2**20:.1f} MiB" for q in sorted(out.iterdir())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
