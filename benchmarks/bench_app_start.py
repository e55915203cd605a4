"""The app's "Start from scratch" on this CPU: one 8-bar track generated and rendered (MIDI, audio,
piano roll), as ``mmmgen app`` does it, timed per song.

For each model (run folders, and random-weight GPT-2 shapes over a run's tokenizer, to size a new
default model before training it) songs are started with seeds 0..N-1, interleaved model by
model after one untimed warm-up each; the report gives the median, 90th percentile and maximum
seconds per start, tokens generated and ms per token. The goal: under 3 s per start.

    .venv/bin/python benchmarks/bench_app_start.py --model src/mmmgen/resources/default_model \\
        --shape 6x6x384 --songs 8 --out benchmarks/results/app_start.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import _env  # benchmarks/_env.py: hardware, versions and git state of a run

HERE = Path(__file__).resolve().parent
GOAL_S = 3.0


def load(spec: str, tokenizer_run: str):
    """``(label, generator, grid)`` for a run folder or a random ``LAYERSxHEADSxWIDTH`` shape."""
    from mmmgen.config import ModelConfig
    from mmmgen.model.run import build_model, generator_for, load_run

    if Path(spec).is_dir():
        model, tokenizer, settings = load_run(spec)
        n = sum(p.numel() for p in model.parameters())
        label = f"{Path(spec).name} ({model.config.n_layer}x{model.config.n_embd}, {n / 1e6:.1f} M)"
        return label, generator_for(model, tokenizer, settings), settings.get("codec", {}).get("grid", 12)
    import torch

    layers, heads, width = (int(x) for x in spec.split("x"))
    _, tokenizer, settings = load_run(tokenizer_run)
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layer=layers, n_head=heads, n_embd=width, context_length=1024),
                        len(tokenizer), tokenizer).eval()
    n = sum(p.numel() for p in model.parameters())
    return f"random {layers}x{width} ({n / 1e6:.1f} M)", generator_for(model, tokenizer, settings), settings.get("codec", {}).get("grid", 12)


def start_once(generator, renderer, seed: int) -> tuple[float, float, int]:
    """Seconds of the whole start, seconds of its generation, tokens generated."""
    from mmmgen.generate.sampling import Sampling

    t = time.perf_counter()
    song = generator.start(None, n_bars=8, tempo=120.0, sampling=Sampling(temperature=0.85, seed=seed))
    gen = time.perf_counter() - t
    renderer(song)
    return time.perf_counter() - t, gen, len(song.tracks[-1].split()) - 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", default=[], help="Run folder (repeatable).")
    p.add_argument("--shape", action="append", default=[], help="Random-weight shape LAYERSxHEADSxWIDTH (repeatable).")
    p.add_argument("--tokenizer-run", default=None, help="Run whose tokenizer random shapes use (default: the first --model).")
    p.add_argument("--songs", type=int, default=8, help="Starts per model (seeds 0..N-1).")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's).")
    p.add_argument("--out", default=None, help="Write the results JSON here (and a .md beside it).")
    a = p.parse_args(argv)
    sys.path.insert(0, str(HERE.parent / "src"))
    import torch

    from mmmgen.app import SongRenderer

    if a.threads:
        torch.set_num_threads(a.threads)
    specs = [*a.model, *a.shape]
    models = [load(s, a.tokenizer_run or a.model[0]) for s in specs]
    renderers = [SongRenderer(grid, 900.0) for _, _, grid in models]
    for (_, gen, _), r in zip(models, renderers, strict=True):
        start_once(gen, r, 1000)  # warm-up: first-call costs
    times: list[list[float]] = [[] for _ in models]
    gens: list[list[float]] = [[] for _ in models]
    tokens: list[list[int]] = [[] for _ in models]
    for seed in range(a.songs):
        for i, ((_, gen, _), r) in enumerate(zip(models, renderers, strict=True)):
            s, g, n = start_once(gen, r, seed)
            times[i].append(s)
            gens[i].append(g)
            tokens[i].append(n)
    rows = []
    for (label, _, _), ts, gs, ns in zip(models, times, gens, tokens, strict=True):
        q = sorted(ts)
        rows.append({"model": label, "median_s": round(statistics.median(ts), 3), "p90_s": round(q[int(0.9 * (len(q) - 1))], 3),
                     "max_s": round(max(ts), 3), "mean_tokens": round(statistics.mean(ns), 1),
                     "gen_ms_per_token": round(1000 * sum(gs) / max(1, sum(ns)), 2),
                     "median_render_s": round(statistics.median(t - g for t, g in zip(ts, gs, strict=True)), 3),
                     "seconds": [round(x, 3) for x in ts],
                     "tokens": ns})
    env = _env.environment(("torch", "transformers", "symusic"), torch_threads=torch.get_num_threads())
    result = {"env": env, "songs": a.songs, "goal_s": GOAL_S, "rows": rows}
    lines = ["# App start (`benchmarks/bench_app_start.py`)", "",
             f"{env['date']} on {env['hardware']['cpu']}, {env['hardware']['logical_cores']} cores, torch threads "
             f"{env['hardware']['torch_threads']}, load {env['hardware']['load_avg_1_5_15']} (machine shared with other jobs). "
             f"'Start from scratch': one 8-bar track (model's choice of genre and instrument, temperature 0.85) generated "
             f"and rendered to MIDI, audio and piano roll; {a.songs} songs per model, interleaved; goal < {GOAL_S:g} s.", "",
             "| model | median s | p90 s | max s | tokens/track | generation ms/token | render s (median) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['median_s']:.2f} | {r['p90_s']:.2f} | {r['max_s']:.2f} | {r['mean_tokens']:.0f} | {r['gen_ms_per_token']:.1f} | {r['median_render_s']:.2f} |"
              for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        out = Path(a.out)
        out.write_text(json.dumps(result, indent=2))
        out.with_suffix(".md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
