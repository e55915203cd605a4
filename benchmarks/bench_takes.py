"""Takes: N takes of a piece decoded as one batch vs one take, same model, same process.

Ways, interleaved (the order rotates every repetition), each a whole piece of ``--tracks`` tracks x
``--bars`` bars from scratch (``generate_song``), the engine's cache emptied before each:

* ``N takes, one batch`` -- ``generate_song(..., takes=N)`` with seed s: N rows decoded in lockstep,
  one batched pass per word over the weights, the shared prompt read once (``generate/batch.py``);
* ``1 take`` -- ``generate_song(..., takes=None)`` with seeds s, s+1, .., s+N-1 (today's single-song
  path): the same N pieces one at a time; their mean time is what one take costs (the baseline).

Reported: wall and process CPU seconds, the ratio batch / 1 take per repetition and its median
(target <= 1.6 for 4 takes; one at a time is N), words per take and in the longest take, valid
takes, and how many takes equal the single run of their seed.

    .venv/bin/python benchmarks/bench_takes.py                    # shipped model, 4 takes, 4 tracks x 8 bars
    .venv/bin/python benchmarks/bench_takes.py --repeat 10 --label shared-cpu --note "machine shared"

Results are merged, keyed by label, into ``benchmarks/results/takes.json`` and rendered to ``takes.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import _env  # (benchmarks/_env.py: hardware, versions and git state of a run)

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
TARGET_RATIO = 1.6


def valid(song, grid: int) -> bool:
    from mmmgen.text.decode import text_to_piece

    try:
        piece = text_to_piece(song.text, grid, strict=True)
    except Exception:  # any failure to parse is "not valid"
        return False
    return len(piece.tracks) == len(song.tracks) and all(t.n_bars == song.n_bars and t.notes for t in piece.tracks)


class PassTimer:
    """Wall time inside the model passes: the batched step (``_LeanRows.read``, counted by live rows) and the one-row step (``_lean_step``).

    Installed around the two functions for the whole run (the wrapper costs ~1 us a pass); ``take()``
    returns and resets what one generation spent, so a run's *passes* can be set against its total:
    the rest is the grammar masks, the draws and the bookkeeping around them.
    """

    def __init__(self) -> None:
        from mmmgen.generate import batch, engine, lean

        self.seconds, self.steps, self.by_rows = 0.0, 0, {}
        read, step = batch._LeanRows.read, lean._lean_step

        def timed_read(stepper, feeds):
            t0 = time.perf_counter()
            out = read(stepper, feeds)
            self._add(sum(f is not None for f in feeds), time.perf_counter() - t0)
            return out

        def timed_step(*a, **k):
            t0 = time.perf_counter()
            out = step(*a, **k)
            self._add(1, time.perf_counter() - t0)
            return out

        batch._LeanRows.read = timed_read
        # the one-row step, where each module calls it (the prompt read of a batch included)
        lean._lean_step = batch._lean_step = engine._lean_step = timed_step

    def _add(self, live: int, seconds: float) -> None:
        self.seconds += seconds
        self.steps += 1
        n, s = self.by_rows.get(live, (0, 0.0))
        self.by_rows[live] = (n + 1, s + seconds)

    def take(self) -> dict:
        out = {"pass_s": self.seconds, "passes": self.steps,
               "by_live_rows": {str(k): [n, s] for k, (n, s) in sorted(self.by_rows.items())}}
        self.seconds, self.steps, self.by_rows = 0.0, 0, {}
        return out


def run_way(generator, takes: int | None, args, seed: int, timer: PassTimer | None = None) -> dict:
    from mmmgen.generate.sampling import Sampling
    from mmmgen.generate.song import generate_song

    generator._cache = type(generator._cache)()  # every run starts from an empty cache
    sampling = Sampling(temperature=args.temperature, seed=seed)
    load_before = os.getloadavg()[0]
    if timer is not None:
        timer.take()
    t0, c0 = time.perf_counter(), time.process_time()
    out = generate_song(generator, args.tracks, args.genre, n_bars=args.bars, sampling=sampling, takes=takes)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    passes = timer.take() if timer is not None else {}
    songs = [out] if takes is None else [t.song for t in out]
    words = [sum(len(track.split()) for track in s.tracks) for s in songs]
    return {
        "seed": seed, "wall_s": wall, "cpu_s": cpu, "takes": len(songs), "words": words,
        "valid": sum(valid(s, generator.grid) for s in songs), "texts": [s.text for s in songs],
        "load_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)], **passes,
    }


def measure(args) -> dict:
    """Per repetition: the N takes as one batch, and the same N pieces one at a time (``takes=None``, seeds s..s+N-1)."""
    import torch

    from mmmgen.model.run import find_run, generator_from_run

    torch.set_num_threads(1)
    generator, _settings = generator_from_run(find_run(args.model))
    args.genre = args.genre or generator.genres[0]
    n = args.takes
    run_way(generator, n, args, args.seed - 1)  # untimed warm-up of both ways
    run_way(generator, None, args, args.seed - 1)
    timer = PassTimer()
    batch, single = [], []
    for r in range(args.repeat):
        seed = args.seed + 100 * r
        jobs = [("batch", None)] + [("single", k) for k in range(n)]
        jobs = jobs[r % len(jobs):] + jobs[: r % len(jobs)]  # interleaved, the order rotating
        singles = {}
        for way, k in jobs:
            if way == "batch":
                row = run_way(generator, n, args, seed, timer)
                batch.append(row)
            else:
                singles[k] = run_way(generator, None, args, seed + k, timer)
        single.append([singles[k] for k in range(n)])
        b, ss = batch[-1], single[-1]
        print(f"rep {r + 1}: {n} takes as one batch {b['wall_s']:.2f} s wall / {b['cpu_s']:.2f} s CPU, words {b['words']}; "
              f"one at a time {sum(x['wall_s'] for x in ss):.2f} s wall / {sum(x['cpu_s'] for x in ss):.2f} s CPU", file=sys.stderr)

    def per_take(rows, key):  # mean seconds per take of each repetition's N single runs
        return [statistics.mean(x[key] for x in rs) for rs in rows]

    ratio_wall = [b["wall_s"] / m for b, m in zip(batch, per_take(single, "wall_s"), strict=True)]
    ratio_cpu = [b["cpu_s"] / m for b, m in zip(batch, per_take(single, "cpu_s"), strict=True)]
    same = sum(b["texts"][k] == rs[k]["texts"][0] for b, rs in zip(batch, single, strict=True) for k in range(n))
    first = [rs[0] for rs in single]

    def per_step(rows_list):  # ms per pass by live rows, over all repetitions
        acc = {}
        for x in rows_list:
            for k, (cnt, sec) in x["by_live_rows"].items():
                c0, s0 = acc.get(k, (0, 0.0))
                acc[k] = (c0 + cnt, s0 + sec)
        return {k: {"passes_per_piece": c / len(rows_list), "ms_per_pass": 1e3 * sec / c} for k, (c, sec) in sorted(acc.items())}

    passes = {
        "batch_pass_s_median": statistics.median(b["pass_s"] for b in batch),
        "single_pass_s_median": statistics.median(per_take(single, "pass_s")),
        "batch_passes_median": statistics.median(b["passes"] for b in batch),
        "single_passes_median": statistics.median(per_take(single, "passes")),
        "batch_by_live_rows": per_step(batch),
        "single_by_live_rows": per_step([x for rs in single for x in rs]),
        # the floor: the batch's model passes alone, against the whole of one take
        "floor_ratio_median": statistics.median(b["pass_s"] / m for b, m in zip(batch, per_take(single, "wall_s"), strict=True)),
    }
    return {
        "passes": passes,
        "ways": {
            "1 take (takes=None), mean of the N seeds": {
                "wall_s_median": statistics.median(per_take(single, "wall_s")), "cpu_s_median": statistics.median(per_take(single, "cpu_s")),
                "wall_s_total": sum(x["wall_s"] for rs in single for x in rs) / n, "cpu_s_total": sum(x["cpu_s"] for rs in single for x in rs) / n,
                "words_per_take": statistics.mean(w for rs in single for x in rs for w in x["words"]),
                "longest_take_words": statistics.mean(max(x["words"][0] for x in rs) for rs in single),
                "valid": sum(x["valid"] for rs in single for x in rs), "takes": sum(x["takes"] for rs in single for x in rs),
            },
            f"{n} takes (takes={n}), one batch": {
                "wall_s_median": statistics.median(b["wall_s"] for b in batch), "cpu_s_median": statistics.median(b["cpu_s"] for b in batch),
                "wall_s_total": sum(b["wall_s"] for b in batch), "cpu_s_total": sum(b["cpu_s"] for b in batch),
                "words_per_take": statistics.mean(w for b in batch for w in b["words"]),
                "longest_take_words": statistics.mean(max(b["words"]) for b in batch),
                "valid": sum(b["valid"] for b in batch), "takes": sum(b["takes"] for b in batch),
            },
        },
        "ratio_wall_median": statistics.median(ratio_wall),
        "ratio_cpu_median": statistics.median(ratio_cpu),
        "ratio_wall_total": sum(b["wall_s"] for b in batch) / (sum(x["wall_s"] for rs in single for x in rs) / n),
        "ratio_cpu_total": sum(b["cpu_s"] for b in batch) / (sum(x["cpu_s"] for rs in single for x in rs) / n),
        "ratio_wall_per_repetition": [round(x, 3) for x in ratio_wall],
        "ratio_cpu_per_repetition": [round(x, 3) for x in ratio_cpu],
        "ratio_vs_first_seed_only_wall_median": statistics.median(b["wall_s"] / f["wall_s"] for b, f in zip(batch, first, strict=True)),
        "takes_equal_to_their_single_run": f"{same}/{n * len(batch)}",
        "rows": {"batch": [{k: v for k, v in b.items() if k != "texts"} for b in batch],
                 "single": [[{k: v for k, v in x.items() if k != "texts"} for x in rs] for rs in single]},
    }


def render_markdown(runs: dict) -> str:
    lines = [
        "# Takes benchmark: N takes as one batch vs one take",
        "",
        "Generated by `benchmarks/bench_takes.py`; do not edit by hand. Each repetition makes the same N "
        "pieces (seeds s .. s+N-1, `generate_song` from scratch, the engine's cache emptied first) two ways: "
        "as one batch (`takes=N`) and one at a time (`takes=None`, today's single-song path), interleaved with "
        "a rotating order, one torch thread, after an untimed warm-up of each. *1 take* = the mean time of "
        "those N single runs (what one take costs). *ratio* = the batch / 1 take, per repetition, then the "
        f"median (target <= {TARGET_RATIO:g} for 4 takes; one at a time is N by definition).",
        "",
    ]
    for label, run in sorted(runs.items()):
        env, s, m = run["environment"], run["settings"], run["result"]
        hw = env["hardware"]
        dirty = env.get("src_modified_tracked_files")
        lines += [
            f"## Run `{label}`",
            "",
            f"Model `{s['model']}`, {s['tracks']} tracks x {s['bars']} bars (4/4), genre {s['genre']}, "
            f"temperature {s['temperature']}, {s['repeat']} repetitions, {s['takes']} takes.",
            "",
            f"{env['date']} - commit {env['git_commit']}"
            + (f" (uncommitted edits in {', '.join(dirty)})" if dirty else "")
            + f" - {hw['cpu']}, {hw['logical_cores']} logical cores, load avg at start {hw['load_avg_1_5_15']}, "
            f"at end {run.get('load_avg_end')} - {env['os']} - Python {env['python']} - "
            + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
            "",
            "| way | s/piece wall (median) | s/piece CPU (median) | words per take | longest take (words) | valid takes |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for way, w in m["ways"].items():
            lines.append(
                f"| {way} | {w['wall_s_median']:.2f} | {w['cpu_s_median']:.2f} | {w['words_per_take']:.0f} | "
                f"{w['longest_take_words']:.0f} | {w['valid']}/{w['takes']} |"
            )
        ok = "meets" if m["ratio_wall_median"] <= TARGET_RATIO else "misses"
        lines += [
            "",
            f"**Ratio {s['takes']} takes / 1 take: {m['ratio_wall_median']:.2f}x wall, {m['ratio_cpu_median']:.2f}x CPU "
            f"(medians over repetitions)**; from the totals {m['ratio_wall_total']:.2f}x wall, {m['ratio_cpu_total']:.2f}x CPU; "
            f"per repetition: wall {m['ratio_wall_per_repetition']}, CPU {m['ratio_cpu_per_repetition']}. "
            f"This {ok} the target of {TARGET_RATIO:g} (wall, median). Against the single run of the first seed only, "
            f"the median wall ratio is {m['ratio_vs_first_seed_only_wall_median']:.2f}x. "
            f"Takes equal to the single run of their seed: {m['takes_equal_to_their_single_run']}. "
            "A batch lasts as long as its longest take (*longest take* column); see benchmarks/README.md for where the rest goes.",
            "",
        ]
        p = m.get("passes")
        if p:
            rows = ", ".join(f"{k} live: {v['passes_per_piece']:.0f} passes at {v['ms_per_pass']:.2f} ms"
                             for k, v in p["batch_by_live_rows"].items())
            one = p["single_by_live_rows"].get("1", {})
            lines += [
                f"**Where the time goes** (wall time inside the model passes, medians per piece). One take: "
                f"{p['single_passes_median']:.0f} passes, {p['single_pass_s_median']:.2f} s "
                f"({one.get('ms_per_pass', float('nan')):.2f} ms a pass; the rest of the take is the grammar masks, draws and "
                f"bookkeeping). {s['takes']} takes: {p['batch_passes_median']:.0f} passes, {p['batch_pass_s_median']:.2f} s "
                f"(by rows still running: {rows}). **The batch's passes alone take {p['floor_ratio_median']:.2f}x "
                f"a whole single take** (the floor of the ratio with the per-row work made free).",
                "",
            ]
        if run.get("note"):
            lines += [run["note"], ""]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Run folder (default: the shipped model).")
    parser.add_argument("--takes", type=int, default=4)
    parser.add_argument("--tracks", type=int, default=4)
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--genre", default=None, help="Genre word (default: the model's first genre).")
    parser.add_argument("--temperature", type=float, default=0.85)
    parser.add_argument("--repeat", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--label", default="default-model")
    parser.add_argument("--note", default="", help="A sentence for the results (e.g. how busy the machine was).")
    args = parser.parse_args(argv)

    import torch

    env = {**_env.environment(("mmmgen", "torch", "transformers", "numpy")), "torch_threads": 1}
    result = measure(args)
    run = {
        "environment": env,
        "settings": {"model": args.model or "shipped default_model", "takes": args.takes, "tracks": args.tracks, "bars": args.bars,
                     "genre": args.genre, "temperature": args.temperature, "repeat": args.repeat, "seed": args.seed,
                     "torch_threads": torch.get_num_threads()},
        "result": result,
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "note": args.note,
    }
    _env.merge_run(RESULTS_DIR / "takes.json", args.label, run, render_markdown)
    print(render_markdown({args.label: run}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
