"""Fine-tuning the shipped model vs training from scratch vs the shipped model untouched.

On real collections the shipped model never saw (``../shared/midi-styles``: nottingham, vgmidi),
split by song (file): a fixed share of held-out songs per collection, and training sets of
``--small`` songs and of all the rest. For each collection and training set:

* ``finetune``: ``mmmgen train --init-from default`` for ``--minutes`` of training;
* ``scratch``: ``mmmgen train --config configs/default-model.yaml`` (the shipped model's shape and
  recipe) on its own tokenizer, for the same minutes;
* ``shipped``: the shipped model untouched (once per collection).

Both trainings of a setting run at the same time with one thread each, so they get the same CPU.
Every training set is prepared ``--like default`` (the shipped model's grid, bars and density
edges) with the collection's name as its genre word (new to the shipped model), so all three
models see the same held-out text, except that the shipped model reads ``GENRE=OTHER`` (it
does not know the new word). Then ``mmmgen evaluate --midi HELD_OUT`` on each model: bits per note
on the held-out songs, and the statistics overlap (Yang & Lerch) of ``--samples`` generated pieces
in the collection's genre (the shipped model: a genre it knows, at random) with the held-out windows.

Steps whose outputs exist in ``--work`` are skipped, so a stopped run continues where it was.

    .venv/bin/python benchmarks/bench_finetune.py                     # 2 collections x (50, all), 5 minutes
    .venv/bin/python benchmarks/bench_finetune.py --minutes 1 --collections vgmidi --sizes 50   # a smoke run
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _env import ROOT, environment, merge_run

RESULTS = ROOT / "benchmarks" / "results"
KINDS = ("finetune", "scratch", "shipped")


def split_songs(files: list[Path], test_share: float, seed: int) -> tuple[list[Path], list[Path]]:
    """``(train, held_out)`` by file: a seeded shuffle, the first ``test_share`` held out."""
    order = sorted(files)
    random.Random(seed).shuffle(order)
    n_test = max(1, round(len(order) * test_share))
    return order[n_test:], order[:n_test]


def link_folder(files: list[Path], folder: Path, genre: str) -> Path:
    """A folder of symlinks to ``files`` (the data is never copied) and its ``genres.csv``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, path in enumerate(files):
        name = f"{i:04d}_{path.name}"
        link = folder / name
        if not link.exists():
            link.symlink_to(path.resolve())
        rows.append((name, genre))
    csv_path = folder.with_suffix(".csv")
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "genre"])
        writer.writerows(rows)
    return csv_path


def env(threads: int) -> dict:
    out = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return out


def mmmgen(args: list[str], log: Path, threads: int = 1) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    f = open(log, "w")
    proc = subprocess.Popen([sys.executable, "-m", "mmmgen", *args], stdout=f, stderr=subprocess.STDOUT, env=env(threads), cwd=ROOT)
    proc.log_file = f
    return proc


def wait_all(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.wait()
        p.log_file.close()
        if p.returncode:
            tail = Path(p.log_file.name).read_text()[-2000:]
            msg = f"{' '.join(p.args[2:5])} failed ({p.returncode}); log {p.log_file.name}:\n{tail}"
            raise SystemExit(msg)


def prepare_setting(work: Path, coll: str, size: str, files: list[Path], genre: str) -> tuple[Path, Path]:
    """The ``--like default`` dataset of one training set and the scratch model's tokenizer."""
    folder = work / coll / f"train-{size}"
    dataset, tokenizer = work / coll / f"data-{size}", work / coll / f"tokenizer-{size}"
    if not (dataset / "report.json").is_file():
        genres = link_folder(files, folder, genre)
        wait_all([mmmgen(["prepare", str(folder), str(dataset), "--like", "default", "--genres", str(genres),
                          "--test-size", "0", "--num-proc", "2"], work / "logs" / f"prepare-{coll}-{size}.log")])
    if not (tokenizer / "tokenizer.json").is_file():
        wait_all([mmmgen(["tokenizer", str(dataset), str(tokenizer)], work / "logs" / f"tokenizer-{coll}-{size}.log")])
    return dataset, tokenizer


def train_pair(work: Path, coll: str, size: str, dataset: Path, tokenizer: Path, minutes: float) -> dict:
    """Fine-tune and scratch trainings of one setting side by side, one thread each."""
    runs = {k: work / coll / f"{k}-{size}" for k in ("finetune", "scratch")}
    common = ["--dataset", str(dataset), "--max-minutes", str(minutes), "--report-to", "none", "--sample-tracks", "0"]
    args = {
        "finetune": ["train", "--init-from", "default", "--output-dir", str(runs["finetune"]), *common],
        "scratch": ["train", "--config", str(ROOT / "configs" / "default-model.yaml"), "--tokenizer", str(tokenizer),
                    "--output-dir", str(runs["scratch"]), "--epochs", "1000", *common],  # the clock decides, as for finetune
    }
    todo = [k for k, r in runs.items() if not (r / "metrics.json").is_file()]
    if todo:
        started = time.time()
        print(f"[{time.strftime('%H:%M:%S')}] training {coll}/{size}: {', '.join(todo)} ({minutes} min each)", flush=True)
        wait_all([mmmgen(args[k], work / "logs" / f"train-{coll}-{size}-{k}.log") for k in todo])
        print(f"  done in {time.time() - started:.0f} s", flush=True)
    out = {}
    for k, r in runs.items():
        m = json.loads((r / "metrics.json").read_text())
        out[k] = {"run": str(r), "steps": m.get("steps"), "train_tokens": m.get("train_tokens"),
                  "train_seconds": m.get("train_runtime_total"), "epochs": m.get("epochs"), "command": args[k]}
    return out


def evaluate_all(jobs: list[tuple[str, list[str], Path]], work: Path, parallel: int) -> None:
    """``mmmgen evaluate`` jobs ``(name, args, out_json)``, ``parallel`` at a time, one thread each."""
    todo = [j for j in jobs if not j[2].is_file()]
    for start in range(0, len(todo), parallel):
        batch = todo[start : start + parallel]
        print(f"[{time.strftime('%H:%M:%S')}] evaluating {', '.join(n for n, _, _ in batch)}", flush=True)
        wait_all([mmmgen(["evaluate", *a, "--out", str(out)], work / "logs" / f"evaluate-{n}.log") for n, a, out in batch])


def summarize(ev: dict) -> dict:
    lk = ev["likelihood"]
    st = ev.get("statistics", {})
    return {"bits_per_note": lk["bits_per_note"], "loss_per_token": lk["loss_per_token"], "windows": lk["windows"],
            "notes": lk["notes"], "unknown_words": lk["unknown_words"], "mean_oa": st.get("mean_oa"),
            "oa": {k: f["oa"] for k, f in st.get("features", {}).items()}, "validity": ev.get("validity", {}).get("validity")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--styles", default=str(ROOT.parent / "shared" / "midi-styles"), help="Folder of collections (midi-styles).")
    ap.add_argument("--collections", default="nottingham,vgmidi", help="Comma-separated sub-folders of --styles.")
    ap.add_argument("--sizes", default="50,all", help="Training songs per setting: numbers and/or all.")
    ap.add_argument("--minutes", type=float, default=5.0, help="Training minutes of each fine-tune and scratch run.")
    ap.add_argument("--test-share", type=float, default=0.1, help="Share of each collection's songs held out.")
    ap.add_argument("--seed", type=int, default=0, help="Seed of the song split.")
    ap.add_argument("--samples", type=int, default=16, help="Generated pieces per model for the statistics overlap.")
    ap.add_argument("--tracks", type=int, default=2, help="Tracks per generated piece.")
    ap.add_argument("--work", default="/tmp/mmmgen-bench-finetune", help="Working folder (datasets, runs, logs); reused.")
    ap.add_argument("--parallel-eval", type=int, default=2, help="Evaluations at a time (one thread each).")
    ap.add_argument("--label", default="midi-styles", help="Key of this run in results/finetune.json.")
    args = ap.parse_args()
    work, styles = Path(args.work), Path(args.styles)
    if not styles.is_dir():
        msg = f"no collections folder {styles} (see ../shared/midi-styles/README.md)"
        raise SystemExit(msg)
    sys.path.insert(0, str(ROOT / "src"))
    from mmmgen.data.prepare import find_midi_files
    from mmmgen.text import vocab as V

    started = time.time()
    env_before = environment(("mmmgen", "torch", "transformers", "datasets", "tokenizers", "symusic"), threads_per_run=1)
    plan, results = {}, {}
    for coll in args.collections.split(","):
        files = find_midi_files(styles / coll)
        train, held_out = split_songs(files, args.test_share, args.seed)
        genre = V.normalize_genre(coll)
        held_csv = link_folder(held_out, work / coll / "held-out", genre)
        sizes = [s for s in args.sizes.split(",") if s == "all" or int(s) < len(train)]
        plan[coll] = {"genre": genre, "files": len(files), "held_out_songs": len(held_out), "train_pool": len(train),
                      "held_out_dir": str(work / coll / "held-out"), "held_out_csv": str(held_csv), "settings": {}}
        for size in sizes:
            chosen = train if size == "all" else train[: int(size)]
            dataset, tokenizer = prepare_setting(work, coll, size, chosen, genre)
            report = json.loads((dataset / "report.json").read_text())
            plan[coll]["settings"][size] = {"songs": len(chosen), "dataset": str(dataset), "tokenizer": str(tokenizer),
                                            "train_windows": report["windows"]["train"], "train_tokens": report["tokens"]["train"],
                                            "new_words": report.get("like", {}).get("new_words")}
    for coll, p in plan.items():  # the trainings, one setting at a time
        for size, s in p["settings"].items():
            s["runs"] = train_pair(work, coll, size, Path(s["dataset"]), Path(s["tokenizer"]), args.minutes)
    jobs = []
    for coll, p in plan.items():
        base = ["--midi", p["held_out_dir"], "--genres", p["held_out_csv"], "--samples", str(args.samples),
                "--tracks", str(args.tracks), "--seed", "0"]
        jobs.append((f"{coll}-shipped", ["--model", "default", *base], work / coll / "eval-shipped.json"))
        for size, s in p["settings"].items():
            for kind in ("finetune", "scratch"):
                jobs.append((f"{coll}-{size}-{kind}", ["--model", s["runs"][kind]["run"], *base, "--genre", p["genre"]],
                             work / coll / f"eval-{kind}-{size}.json"))
    jobs = [(n, [a if a != "default" else str(ROOT / "src/mmmgen/resources/default_model") for a in args_], out) for n, args_, out in jobs]
    evaluate_all(jobs, work, args.parallel_eval)
    for coll, p in plan.items():
        shipped = summarize(json.loads((work / coll / "eval-shipped.json").read_text()))
        results[coll] = {"shipped": shipped, "settings": {}}
        for size, s in p["settings"].items():
            row = {k: summarize(json.loads((work / coll / f"eval-{k}-{size}.json").read_text())) for k in ("finetune", "scratch")}
            row["shipped"] = shipped
            ft = row["finetune"]["bits_per_note"]
            row["gain_vs_scratch"] = 1 - ft / row["scratch"]["bits_per_note"]
            row["gain_vs_shipped"] = 1 - ft / shipped["bits_per_note"]
            row["target_met"] = row["gain_vs_scratch"] >= 0.10 and row["gain_vs_shipped"] >= 0.10
            for k in ("finetune", "scratch"):
                row[k]["training"] = s["runs"][k]
            results[coll]["settings"][size] = row
    record = {
        "environment": env_before,
        "environment_after": environment(("mmmgen",)),
        "shared_machine": "2 logical cores shared with about 7 other parallel jobs (other helpers' tests and benchmarks); "
                          "fine-tune and scratch of a setting ran at the same time, one thread each",
        "settings": {k: v for k, v in vars(args).items()},
        "plan": plan,
        "results": results,
        "seconds": round(time.time() - started, 1),
    }
    merge_run(RESULTS / "finetune.json", args.label, record, markdown, indent=2)
    print(markdown({args.label: record}))


def _f(x, fmt=".3f") -> str:
    return "n/a" if x is None else format(x, fmt)


def markdown(all_records: dict) -> str:
    out = ["# Fine-tuning the shipped model vs training from scratch vs the shipped model untouched", "",
           "Written by `benchmarks/bench_finetune.py` (see benchmarks/README.md). Bits per note: held-out songs of "
           "each collection (split by song), lower is better. Gain = 1 - finetune / other (target: >= 10 % against "
           "both). OA: mean overlapping area of the Yang & Lerch statistics of generated pieces vs the held-out "
           "windows (1 = same distribution).", ""]
    for label, rec in all_records.items():
        e, s = rec["environment"], rec["settings"]
        out += [f"## {label}", "",
                f"{e['date']}, {e['hardware']['cpu']} ({e['hardware']['logical_cores']} logical cores, load "
                f"{e['hardware']['load_avg_1_5_15']} at the start, {rec['environment_after']['hardware']['load_avg_1_5_15']} at the end), "
                f"torch {e['versions']['torch']}, transformers {e['versions']['transformers']}, git {e['git_commit']}. "
                f"**Shared machine**: {rec['shared_machine']}. {s['minutes']:g} minutes of training per run; "
                f"{s['samples']} generated pieces of {s['tracks']} tracks per model; {s['test_share']:.0%} of the songs held out "
                f"(seed {s['seed']}). Total {rec['seconds'] / 60:.0f} min.", "",
                "| collection | training songs | windows | finetune bits/note | scratch bits/note | shipped bits/note | "
                "gain vs scratch | gain vs shipped | target | OA finetune / scratch / shipped | steps finetune / scratch |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for coll, r in rec["results"].items():
            p = rec["plan"][coll]
            for size, row in r["settings"].items():
                ps = p["settings"][size]
                out.append(
                    f"| {coll} ({p['held_out_songs']} held-out songs) | {ps['songs']} ({size}) | {ps['train_windows']:,} | "
                    f"{_f(row['finetune']['bits_per_note'])} | {_f(row['scratch']['bits_per_note'])} | {_f(row['shipped']['bits_per_note'])} | "
                    f"{row['gain_vs_scratch']:+.1%} | {row['gain_vs_shipped']:+.1%} | {'met' if row['target_met'] else 'missed'} | "
                    f"{_f(row['finetune']['mean_oa'])} / {_f(row['scratch']['mean_oa'])} / {_f(row['shipped']['mean_oa'])} | "
                    f"{row['finetune']['training']['steps']} / {row['scratch']['training']['steps']} |")
        notes = [f"- {note}" for note in rec.get("notes", [])]  # remarks added to the JSON after a run
        out += ["", *notes] if notes else []
        out += ["", "Words new to the shipped model (added by `--init-from`): " + "; ".join(
            f"{coll}: {', '.join(next(iter(p['settings'].values()))['new_words'] or ['none'])}" for coll, p in rec["plan"].items()), ""]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
