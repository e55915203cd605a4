"""End to end: the command a user runs, ``mmmgen prepare DIR OUT --num-proc N``, against MidiTok's
MMM doing the same job (a fresh process: import, build the tokenizer, encode every file of the
folder, write the token ids to disk). Used by ``bench_prepare.py --end-to-end``.

Every run is a subprocess timed from outside: wall time (``perf_counter`` around it) and CPU time
(user + system of the process and its children, from ``getrusage(RUSAGE_CHILDREN)``). Start-up
imports, file listing, the train/test split, the spool, the density quantiles and the dataset
writing are all inside the figure. Runs are interleaved round-robin, so a change of load on the
machine hits every method.

    python benchmarks/_prepare_e2e.py miditok DIR OUT.jsonl     # the MidiTok job alone
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

MIDI_SUFFIXES = {".mid", ".midi", ".kar", ".smf"}
MIDITOK_E2E = "miditok MMM(MIDILike) end to end"
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip


def ours(num_proc: int) -> str:
    return f"mmmgen prepare --num-proc {num_proc}"


def miditok_job(midi_dir: str, out_path: str) -> None:
    """MidiTok's MMM over a folder, as a user would run it: one JSON line of ids per file."""
    import warnings

    warnings.simplefilter("ignore")
    import miditok

    tokenizer = miditok.MMM(miditok.TokenizerConfig(base_tokenizer="MIDILike"))
    files = sorted(p for p in Path(midi_dir).rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
    failed = tokens = 0
    with open(out_path, "w", encoding="utf-8") as out:
        for path in files:
            try:
                seq = tokenizer.encode(path)
            except Exception:  # a file MidiTok cannot read: skipped, as prepare skips it
                failed += 1
                continue
            ids = [s.ids for s in seq] if isinstance(seq, list) else seq.ids
            tokens += sum(len(i) for i in ids) if isinstance(seq, list) else len(ids)
            out.write(json.dumps({"source": str(path.relative_to(midi_dir)), "ids": ids}) + "\n")
    print(json.dumps({"files": len(files), "failed": failed, "tokens": tokens}))


def _command(method: str, midi_dir: Path, out: Path) -> list[str]:
    if method == MIDITOK_E2E:
        return [sys.executable, str(Path(__file__).resolve()), "miditok", str(midi_dir), str(out.with_suffix(".jsonl"))]
    num_proc = method.rsplit(" ", 1)[1]
    return [sys.executable, "-m", "mmmgen", "prepare", str(midi_dir), str(out), "--num-proc", num_proc]


def _timed(cmd: list[str]) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **ENV}, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        msg = f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}"
        raise RuntimeError(msg)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


def run(midi_dir: Path, work: Path, methods: list[str], repeat: int) -> dict[str, dict]:
    """``repeat`` interleaved runs of each method; outputs checked after each run."""
    raw = {m: {"wall_s": [], "cpu_s": []} for m in methods}
    for r in range(repeat):
        order = methods[r % len(methods) :] + methods[: r % len(methods)]
        for m in order:
            out = work / f"e2e-{methods.index(m)}"
            shutil.rmtree(out, ignore_errors=True)
            wall, cpu, stdout = _timed(_command(m, midi_dir, out))
            raw[m]["wall_s"].append(wall)
            raw[m]["cpu_s"].append(cpu)
            if m == MIDITOK_E2E:
                raw[m]["output"] = json.loads(stdout.strip().splitlines()[-1])
                out.with_suffix(".jsonl").unlink()
            else:
                report = json.loads((out / "report.json").read_text())
                raw[m]["output"] = {"files_kept": report["files_kept"], "windows": report["windows"], "tokens": report["tokens"]}
                shutil.rmtree(out)
            print(f"  e2e run {r + 1}/{repeat} {m}: {wall:.2f} s wall, {cpu:.2f} s CPU", file=sys.stderr)
    for m in methods:
        w, c = raw[m]["wall_s"], raw[m]["cpu_s"]
        raw[m].update(wall_best=min(w), wall_median=statistics.median(w), cpu_best=min(c), cpu_median=statistics.median(c))
    return raw


def ratios(results: dict[str, dict]) -> dict[str, dict]:
    """MidiTok's time over each of ours (higher is better for us)."""
    base = results.get(MIDITOK_E2E)
    if not base:
        return {}
    return {
        m: {
            "wall_best": base["wall_best"] / r["wall_best"],
            "wall_median": base["wall_median"] / r["wall_median"],
            "cpu_best": base["cpu_best"] / r["cpu_best"],
        }
        for m, r in results.items()
        if m != MIDITOK_E2E
    }


def markdown(e2e: dict, encoder_ratio: float | None, target: float) -> list[str]:
    """The end-to-end table of one corpus (rows: methods; the encoder-only ratio beside it)."""
    results, rat = e2e["methods"], e2e["ratios"]
    lines = [
        "",
        f"**End to end** (`mmmgen prepare` as a subprocess vs `{MIDITOK_E2E}`; {e2e['repeat']} interleaved runs each, "
        "start-up imports and all writing included):",
        "",
        "| command | wall s (best) | wall s (median) | CPU s (best) | output | MidiTok / this: wall best, median, CPU |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for m, r in results.items():
        out = r["output"]
        what = (f"{out['tokens']:,} token ids, {out['failed']} files failed" if m == MIDITOK_E2E
                else f"{sum(out['windows'].values()):,} windows, {sum(out['tokens'].values()):,} words")  # fmt: skip
        ratio = rat.get(m)
        cell = f"{ratio['wall_best']:.2f}x, {ratio['wall_median']:.2f}x, {ratio['cpu_best']:.2f}x" if ratio else ""
        lines.append(f"| `{m}` | {r['wall_best']:.2f} | {r['wall_median']:.2f} | {r['cpu_best']:.2f} | {what} | {cell} |")
    one = rat.get(ours(1))
    if one:
        verdict = "meets" if one["wall_best"] >= target and one["cpu_best"] >= target else "MISSES"
        enc = f"; the encoder alone (table above): {encoder_ratio:.2f}x by CPU time" if encoder_ratio else ""
        lines += [
            "",
            f"**End to end, one process: {one['wall_best']:.2f}x by wall time (median {one['wall_median']:.2f}x), "
            f"{one['cpu_best']:.2f}x by CPU time** - {verdict} the {target:g}x target{enc}.",
        ]
    two = results.get(ours(2))
    if two and ours(1) in results:
        one_r = results[ours(1)]
        lines += [
            "",
            f"`--num-proc 2` / `--num-proc 1` wall time: best {two['wall_best'] / one_r['wall_best']:.2f}, "
            f"median {two['wall_median'] / one_r['wall_median']:.2f} (CPU time {two['cpu_best'] / one_r['cpu_best']:.2f}: "
            "what a second process adds: its own start-up, and work split into more, smaller pieces).",
        ]
    return lines


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "miditok":
        miditok_job(sys.argv[2], sys.argv[3])
    else:
        print(__doc__)
        sys.exit(2)
