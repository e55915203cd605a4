"""Takes: N takes of a piece decoded as one batch vs one take, same model, same process.

Ways, interleaved (the order rotates every repetition), each a whole piece of ``--tracks`` tracks x
``--bars`` bars from scratch (``generate_song``), the engine's cache emptied before each:

* ``1 take``   -- ``generate_song(..., takes=None)``: today's single-song path (the baseline);
* ``N takes``  -- ``generate_song(..., takes=N)``: N rows decoded in lockstep, one batched pass per
  word over the weights, the shared prompt read once (``generate/batch.py``);
* ``1 take, batch path`` -- ``takes=1`` (for reference: the batch machinery on one row).

The same seed is given to every way in a repetition, so take 1 of the batch should be the single
run's piece (counted as *take 1 = single run*). Reported: wall and process CPU seconds per piece
(median and total), the ratio N takes / 1 take (target <= 1.6 for 4 takes; N sequential runs would be
about N), words drawn, valid takes.

    .venv/bin/python benchmarks/bench_takes.py                    # shipped model, 4 takes, 4 tracks x 8 bars
    .venv/bin/python benchmarks/bench_takes.py --repeat 10 --label shared-cpu --note "machine shared"

Results are merged, keyed by label, into ``benchmarks/results/takes.json`` and rendered to ``takes.md``.
"""

from __future__ import annotations

import argparse
import json
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


def run_way(generator, way: str, args, seed: int) -> dict:
    from mmmgen.generate.sampling import Sampling
    from mmmgen.generate.song import generate_song

    takes = {"1 take": None, "1 take, batch path": 1}.get(way, args.takes)
    generator._cache = type(generator._cache)()  # every way starts from an empty cache
    sampling = Sampling(temperature=args.temperature, seed=seed)
    load_before = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    out = generate_song(generator, args.tracks, args.genre, n_bars=args.bars, sampling=sampling, takes=takes)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    songs = [out] if takes is None else [t.song for t in out]
    words = [sum(len(track.split()) for track in s.tracks) for s in songs]
    return {
        "seed": seed, "wall_s": wall, "cpu_s": cpu, "takes": len(songs), "words": words,
        "valid": sum(valid(s, generator.grid) for s in songs), "first_text": songs[0].text,
        "load_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def measure(args) -> dict:
    import torch

    from mmmgen.model.run import find_run, generator_from_run

    torch.set_num_threads(1)
    generator, _settings = generator_from_run(find_run(args.model))
    args.genre = args.genre or generator.genres[0]
    ways = ["1 take", f"{args.takes} takes", "1 take, batch path"]
    for way in ways:  # untimed warm-up
        run_way(generator, way, args, args.seed - 1)
    rows = {w: [] for w in ways}
    for r in range(args.repeat):
        seed = args.seed + 100 * r
        order = ways[r % len(ways):] + ways[: r % len(ways)]
        for way in order:
            row = run_way(generator, way, args, seed)
            rows[way].append(row)
            print(f"{way} rep {r + 1}: {row['wall_s']:.2f} s wall, {row['cpu_s']:.2f} s CPU, words {row['words']}", file=sys.stderr)
    summary = {}
    for way, rs in rows.items():
        summary[way] = {
            "pieces": len(rs),
            "wall_s_median": statistics.median(r["wall_s"] for r in rs),
            "cpu_s_median": statistics.median(r["cpu_s"] for r in rs),
            "wall_s_total": sum(r["wall_s"] for r in rs),
            "cpu_s_total": sum(r["cpu_s"] for r in rs),
            "words_per_take": statistics.mean(w for r in rs for w in r["words"]),
            "longest_take_words": statistics.mean(max(r["words"]) for r in rs),
            "valid": sum(r["valid"] for r in rs),
            "takes": sum(r["takes"] for r in rs),
        }
    base, many = summary["1 take"], summary[f"{args.takes} takes"]
    same_first = sum(a["first_text"] == b["first_text"] for a, b in zip(rows["1 take"], rows[f"{args.takes} takes"], strict=True))
    per_rep = [b["wall_s"] / a["wall_s"] for a, b in zip(rows["1 take"], rows[f"{args.takes} takes"], strict=True)]
    return {
        "ways": summary,
        "ratio_wall_median": many["wall_s_median"] / base["wall_s_median"],
        "ratio_cpu_median": many["cpu_s_median"] / base["cpu_s_median"],
        "ratio_wall_total": many["wall_s_total"] / base["wall_s_total"],
        "ratio_cpu_total": many["cpu_s_total"] / base["cpu_s_total"],
        "ratio_wall_per_repetition": [round(x, 3) for x in per_rep],
        "take1_equals_single_run": f"{same_first}/{len(per_rep)}",
        "rows": {w: [{k: v for k, v in r.items() if k != "first_text"} for r in rs] for w, rs in rows.items()},
    }


def render_markdown(runs: dict) -> str:
    lines = [
        "# Takes benchmark: N takes as one batch vs one take",
        "",
        "Generated by `benchmarks/bench_takes.py`; do not edit by hand. Each way makes a whole piece "
        "from scratch with `generate_song` (the engine's cache emptied first), the ways interleaved with "
        "a rotating order, one torch thread, after one untimed warm-up of each. *1 take*: `takes=None`, "
        "the single-song path (the baseline). *N takes*: `takes=N`, one batch. *ratio* = N takes / 1 take "
        f"(target <= {TARGET_RATIO:g} for 4 takes; N sequential runs would be about N).",
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
            f"**Ratio {s['takes']} takes / 1 take: {m['ratio_wall_median']:.2f}x wall (median), "
            f"{m['ratio_cpu_median']:.2f}x CPU (median)**; totals {m['ratio_wall_total']:.2f}x wall, "
            f"{m['ratio_cpu_total']:.2f}x CPU; per repetition (wall) {m['ratio_wall_per_repetition']}. "
            f"This {ok} the target of {TARGET_RATIO:g}. Take 1 of the batch = the single run with the same seed: "
            f"{m['take1_equals_single_run']}.",
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
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / "takes.json"
    runs = json.loads(path.read_text()) if path.exists() else {}
    runs[args.label] = run
    path.write_text(json.dumps(runs, indent=1) + "\n")
    (RESULTS_DIR / "takes.md").write_text(render_markdown(runs))
    print(render_markdown({args.label: run}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
