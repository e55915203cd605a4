"""Generation speed and validity: mmmgen's ``Generator`` against the tutorial's ``model.generate``.

Same model, same prompt, same process, for each model measured:

* ``mmmgen``   -- ``generate_song(Generator(model, tokenizer), tracks, n_bars, ...)``: one track at a
  time, every word masked by the grammar (``generate/grammar.py``), the key/value cache of the piece kept
  between tracks, a hand-written sampling loop that stops at ``TRACK_END``.
* ``tutorial`` -- for each track, ``model.generate(input_ids, max_new_tokens=CAP, do_sample=True,
  temperature=T, eos_token_id=TRACK_END)`` on the whole text so far + ``TRACK_START`` (re-read from
  scratch every track, as in the tutorial), and the new words appended to the text.

Reported per way: ms per generated token (wall and process CPU time; the CPU time is steadier on a
busy machine), seconds per piece, tokens generated, the share of valid tracks (the track parses
with ``text_to_piece(strict=True)``, ends with ``TRACK_END``, has exactly the requested bars and at
least one note), and the ratio tutorial/mmmgen of ms per token (target >= 2x).

Models: by default random-weight GPT-2s of the preset shapes (``tutorial`` 6 x 512, ``small``
4 x 256, and 2 x 128) over the full MMM vocabulary. Random weights almost never write
``TRACK_END``, so the tutorial way runs to its cap (``--cap``, 512 by default here) and its tracks
are invalid: that is reported as is. ``--model RUN`` measures a trained run folder instead (cap
2048 by default, as in the tutorial, bounded by the model's context).

    .venv/bin/python benchmarks/bench_generate.py                          # 3 random-weight shapes
    .venv/bin/python benchmarks/bench_generate.py --shapes 2x128 --repeat 3
    .venv/bin/python benchmarks/bench_generate.py --model runs/bach --tracks 4 --bars 8

Results are merged, keyed by label, into ``benchmarks/results/generate.json`` and rendered to
``generate.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import _env  # benchmarks/_env.py: hardware, versions and git state of a run

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS_DIR = HERE / "results"
TARGET_RATIO = 2.0
# name -> (layers, heads, width); the first two are mmmgen.config.PRESETS shapes
SHAPES = {"tutorial": (6, 8, 512), "small": (4, 4, 256), "2x128": (2, 2, 128)}
RANDOM_GENRES = ("POP", "ROCK")


# --- models ----------------------------------------------------------------------------------
def random_model(shape: str, context: int, seed: int):
    """``(model, tokenizer, grid, genre)``: a random-weight GPT-2 of a shape over the full vocabulary."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers

    from mmmgen.config import ModelConfig
    from mmmgen.model.run import build_model
    from mmmgen.model.tokenizer import wrap_tokenizer
    from mmmgen.text import vocab as V

    words = [*V.SPECIAL_TOKENS, *V.all_words(genres=list(RANDOM_GENRES))]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token=V.UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = wrap_tokenizer(tok)
    layers, heads, width = SHAPES[shape]
    torch.manual_seed(seed)
    cfg = ModelConfig(n_layer=layers, n_head=heads, n_embd=width, context_length=context)
    model = build_model(cfg, len(words), tokenizer).eval()
    return model, tokenizer, 12, RANDOM_GENRES[0]


def run_model(run_dir: Path):
    """``(model, tokenizer, grid, genre)`` of a trained run folder."""
    from mmmgen.model.run import load_run
    from mmmgen.text import vocab as V

    model, tokenizer, settings = load_run(run_dir)
    genres = [g for g in settings.get("genre_labels", []) if g != V.OTHER_GENRE] or [V.OTHER_GENRE]
    return model, tokenizer, settings.get("codec", {}).get("grid", 12), genres[0]


# --- the two ways ----------------------------------------------------------------------------
def track_problem(header: str, track: str, n_bars: int, grid: int) -> str | None:
    """Why a generated track is not valid, or None when it is (``mmmgen evaluate``'s rule)."""
    from mmmgen.model.evaluate import track_problem as problem
    from mmmgen.text import vocab as V

    if not track.endswith(V.TRACK_END):
        return "no TRACK_END (hit the cap)"
    return problem(header, track, n_bars, grid)


def ours(model, tokenizer, grid: int, genre: str, args, seed: int) -> dict:
    """One piece with mmmgen's Generator: timing, tokens and validity of each track."""
    from dataclasses import replace

    from mmmgen.generate.sampling import GenerationError, Sampling
    from mmmgen.generate.song import Generator, Song

    generator = Generator(model, tokenizer, grid=grid)
    song = Song((4, 4), genre, args.bars)
    sampling = Sampling(temperature=args.temperature, seed=seed)
    tokens, problems, error, lengths = 0, Counter(), None, []
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(args.tracks):  # generate_song's loop, with the timing kept when a track fails
        try:
            song = generator.add_track(song, new_instrument=True, sampling=replace(sampling, seed=seed + i))
        except GenerationError as exc:  # e.g. the piece no longer fits the model's context
            error = str(exc)
            problems["not generated: " + error.split(";")[0]] += args.tracks - i
            break
        lengths.append(len(song.tracks[-1].split()) - 1)  # TRACK_START is the prompt's, not generated
        tokens += lengths[-1]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    for track in song.tracks:
        problem = track_problem(song.header, track, args.bars, grid)
        if problem:
            problems[problem] += 1
    valid = len(song.tracks) - sum(v for k, v in problems.items() if not k.startswith("not generated"))
    return {"wall_s": wall, "cpu_s": cpu, "tokens": tokens, "tracks": args.tracks, "valid": valid,
            "problems": dict(problems), "text_words": len(song.text.split()), "error": error,
            "track_tokens": lengths}


def tutorial(model, tokenizer, grid: int, genre: str, args, seed: int, lengths: list[int] | None = None) -> dict:
    """One piece the tutorial's way: ``model.generate`` per track on the whole text so far.

    ``lengths``: generate exactly these token counts per track (``min_new_tokens`` =
    ``max_new_tokens``), to compare the cost per token at the same text lengths as mmmgen's piece.
    """
    import torch

    from mmmgen.text import vocab as V

    vocab = tokenizer.get_vocab()
    eos, device = vocab[V.TRACK_END], next(model.parameters()).device
    context = int(model.config.n_positions)
    header = f"{V.PIECE_START} {V.time_signature(4, 4)} {V.genre(genre)}"
    text, tokens, problems, capped = header, 0, Counter(), 0
    torch.manual_seed(seed)
    wall, cpu = time.perf_counter(), time.process_time()
    n_tracks = args.tracks if lengths is None else len(lengths)
    for k in range(n_tracks):
        ids = tokenizer(f"{text} {V.TRACK_START}", add_special_tokens=False, return_tensors="pt")["input_ids"].to(device)
        wanted = args.cap if lengths is None else lengths[k]
        cap = min(wanted, context - ids.shape[1])
        if cap <= 0:
            problems["not generated: no room left in the context"] += 1
            continue
        capped += cap < wanted
        with torch.inference_mode():
            out = model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=cap, do_sample=True,
                temperature=args.temperature, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id,
                min_new_tokens=None if lengths is None else cap,
            )
        new = out[0, ids.shape[1]:].tolist()
        tokens += len(new)
        words = tokenizer.convert_ids_to_tokens(new)
        if V.TRACK_END in words:
            words = words[: words.index(V.TRACK_END) + 1]
        track = " ".join([V.TRACK_START, *words])
        problem = track_problem(header, track, args.bars, grid)
        if problem:
            problems[problem] += 1
        text = f"{text} {track}"
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    valid = n_tracks - sum(problems.values())
    return {"wall_s": wall, "cpu_s": cpu, "tokens": tokens, "tracks": n_tracks, "valid": valid,
            "problems": dict(problems), "text_words": len(text.split()), "cap_cut_by_context": capped}


def warm_up(model, tokenizer, grid: int, genre: str, args) -> None:
    """One short untimed call of each way (first-call costs: allocations, kernels, tokenizer)."""
    short = argparse.Namespace(**{**vars(args), "tracks": 1, "bars": 1, "cap": 16})
    ours(model, tokenizer, grid, genre, short, 12345)
    tutorial(model, tokenizer, grid, genre, short, 12345)


def measure(label: str, load, args) -> dict:
    """Both ways on one model, ``--repeat`` pieces each, interleaved; totals and per-piece rows."""
    import torch

    model, tokenizer, grid, genre = load()
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device.replace("auto", "cpu")
    model.to(device)
    print(f"[{label}] {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters on {device}", file=sys.stderr)
    warm_up(model, tokenizer, grid, genre, args)
    rows = {"mmmgen": [], "tutorial": []}
    if args.same_lengths:
        rows["tutorial, same lengths"] = []
    for r in range(args.repeat):
        seed = args.seed + 100 * r
        for name in rows:
            load_before = os.getloadavg()[0]
            if name == "mmmgen":
                row = ours(model, tokenizer, grid, genre, args, seed)
            else:
                lengths = rows["mmmgen"][-1]["track_tokens"] if name != "tutorial" else None
                row = tutorial(model, tokenizer, grid, genre, args, seed, lengths)
            row["load_1min_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
            rows[name].append(row)
            print(f"[{label}] {name} piece {r + 1}: {row['tokens']} tokens in {row['wall_s']:.1f} s "
                  f"({1e3 * row['wall_s'] / max(row['tokens'], 1):.2f} ms/token wall, "
                  f"{1e3 * row['cpu_s'] / max(row['tokens'], 1):.2f} CPU), "
                  f"{row['valid']}/{row['tracks']} valid", file=sys.stderr)
    summary = {name: summarize(r) for name, r in rows.items()}
    a, b = summary["mmmgen"], summary["tutorial"]
    same = summary.get("tutorial, same lengths")
    return {
        "model": label,
        "device": device,
        "shape": {"n_layer": model.config.n_layer, "n_embd": model.config.n_embd, "n_head": model.config.n_head,
                  "n_positions": model.config.n_positions, "vocab_size": model.config.vocab_size},
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
        "ways": summary,
        "ratio_ms_per_token_wall": b["ms_per_token_wall"] / a["ms_per_token_wall"] if a["tokens"] else None,
        "ratio_ms_per_token_cpu": b["ms_per_token_cpu"] / a["ms_per_token_cpu"] if a["tokens"] else None,
        "ratio_s_per_piece": b["s_per_piece"] / a["s_per_piece"] if a["s_per_piece"] else None,
        "ratio_same_lengths_wall": same["ms_per_token_wall"] / a["ms_per_token_wall"] if same and a["tokens"] else None,
        "ratio_same_lengths_cpu": same["ms_per_token_cpu"] / a["ms_per_token_cpu"] if same and a["tokens"] else None,
        "rows": rows,
    }


def summarize(rows: list[dict]) -> dict:
    tokens = sum(r["tokens"] for r in rows)
    wall, cpu = sum(r["wall_s"] for r in rows), sum(r["cpu_s"] for r in rows)
    tracks, valid = sum(r["tracks"] for r in rows), sum(r["valid"] for r in rows)
    problems = Counter()
    for r in rows:
        problems.update(r["problems"])
    per_token = [1e3 * r["wall_s"] / r["tokens"] for r in rows if r["tokens"]]
    return {
        "pieces": len(rows),
        "tokens": tokens,
        "tokens_per_piece": tokens / len(rows),
        "ms_per_token_wall": 1e3 * wall / max(tokens, 1),
        "ms_per_token_cpu": 1e3 * cpu / max(tokens, 1),
        "ms_per_token_wall_best_piece": min(per_token) if per_token else None,
        "s_per_piece": wall / len(rows),
        "s_per_piece_cpu": cpu / len(rows),
        "cpu_over_wall": cpu / wall if wall else None,
        "tracks": tracks,
        "valid": valid,
        "valid_share": valid / tracks if tracks else None,
        "problems": dict(problems),
    }


# --- environment -------------------------------------------------------------------------------
def environment() -> dict:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {**_env.environment(("mmmgen", "torch", "transformers", "numpy"), gpu=gpu),
            "torch_threads": torch.get_num_threads()}


# --- reporting ---------------------------------------------------------------------------------
def _fmt(x, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def render_markdown(runs: dict) -> str:
    lines = [
        "# Generation benchmark: mmmgen's Generator vs the tutorial's `model.generate`",
        "",
        "Generated by `benchmarks/bench_generate.py`; do not edit by hand. Same model, prompt "
        "(`PIECE_START TIME_SIGNATURE=4_4 GENRE=..`) and process for both ways; pieces interleaved "
        "(mmmgen, tutorial, mmmgen, ...) after one untimed warm-up of each. *ms/token* = time for "
        "the whole piece (prompt reading included) / tokens generated. *ratio* = tutorial / mmmgen "
        f"ms per token (target >= {TARGET_RATIO:g}x). *valid* = the track parses strictly, ends with "
        "TRACK_END, has exactly the requested bars and >= 1 note. *tutorial, same lengths*: "
        "`generate` with `min_new_tokens = max_new_tokens =` the token count of each of mmmgen's "
        "tracks in the same repeat, so both ways pay for the same text lengths (the per-token cost "
        "grows with the text; its validity is not meaningful).",
        "",
    ]
    for label, run in sorted(runs.items()):
        env, s = run["environment"], run["settings"]
        hw = env["hardware"]
        dirty = env.get("src_modified_tracked_files")
        lines += [
            f"## Run `{label}`",
            "",
            f"{s['tracks']} tracks x {s['bars']} bars (4/4) per piece, {s['repeat']} piece(s) per way and model, "
            f"temperature {s['temperature']}, tutorial cap `max_new_tokens={s['cap']}` per track "
            f"(bounded by the context), torch threads {env['torch_threads']}, device {s['device']}.",
            "",
            f"{env['date']} - commit {env['git_commit']}"
            + (f" (uncommitted edits in {', '.join(dirty)})" if dirty else "")
            + f" - {hw['cpu']}, {hw['logical_cores']} logical cores"
            + (f", GPU {hw['gpu']}" if hw.get("gpu") else "")
            + f", load avg at start {hw['load_avg_1_5_15']}, at end {run.get('load_avg_end')} - {env['os']} - "
            f"Python {env['python']} - " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
            "",
            "| model | way | ms/token (wall) | ms/token (CPU) | s/piece | tokens/piece | valid tracks | "
            "ratio wall (CPU) | why invalid |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for m in run["models"]:
            for way, w in m["ways"].items():
                ratio = ""
                if way == "tutorial":
                    ratio = f"**{_fmt(m['ratio_ms_per_token_wall'])}x** ({_fmt(m['ratio_ms_per_token_cpu'])}x)"
                elif way != "mmmgen":
                    ratio = f"**{_fmt(m.get('ratio_same_lengths_wall'))}x** ({_fmt(m.get('ratio_same_lengths_cpu'))}x)"
                why = ", ".join(f"{k}: {v}" for k, v in sorted(w["problems"].items())) or ""
                lines.append(
                    f"| {m['model']} ({m['shape']['n_layer']}x{m['shape']['n_embd']}, {m['params_m']:.1f} M) | {way} | "
                    f"{_fmt(w['ms_per_token_wall'])} | {_fmt(w['ms_per_token_cpu'])} | {_fmt(w['s_per_piece'], '.1f')} | "
                    f"{w['tokens_per_piece']:.0f} | {w['valid']}/{w['tracks']} ({100 * (w['valid_share'] or 0):.0f} %) | "
                    f"{ratio} | {why} |"
                )
        busy = [w["cpu_over_wall"] for m in run["models"] for w in m["ways"].values() if w["cpu_over_wall"]]
        lines += [""]
        if run.get("note"):
            lines += [run["note"], ""]
        if busy and env["torch_threads"] == 1 and min(busy) < 0.9:
            lines += [
                f"Note: the machine was busy (CPU/wall as low as {min(busy):.2f} with one torch thread), "
                "so wall times are inflated and noisy; compare the CPU-time column.",
                "",
            ]
    lines += [
        "Random-weight models write near-uniform words: the grammar keeps mmmgen's tracks valid "
        "(and long: ~600 words per 8-bar track), while the tutorial way almost never samples "
        "TRACK_END and runs to its cap, so its tokens are cheaper on average (shorter texts) and "
        "its tracks invalid. Use `--model RUN` for the validity of a trained model.",
        "",
    ]
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark generation: mmmgen's Generator against the tutorial's model.generate per track.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", type=Path, help="a trained run folder; default: random-weight models of --shapes")
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"random-weight shapes to measure ({', '.join(SHAPES)})")
    parser.add_argument("--tracks", type=int, default=4, help="tracks per piece")
    parser.add_argument("--bars", type=int, default=8, help="bars per track")
    parser.add_argument("--repeat", type=int, default=1, help="pieces per way and model")
    parser.add_argument("--temperature", type=float, default=0.75, help="sampling temperature of both ways")
    parser.add_argument("--cap", type=int, help="tutorial way's max_new_tokens per track (default 512 for random "
                        "weights, which rarely stop by themselves; 2048 with --model)")
    parser.add_argument("--context", type=int, default=4096, help="positions of the random-weight models "
                        "(a random 4-track 8-bar piece is ~2500 words)")
    parser.add_argument("--no-same-lengths", dest="same_lengths", action="store_false",
                        help="skip the tutorial way forced to mmmgen's track lengths (per-token cost at equal text lengths)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own)")
    parser.add_argument("--device", default="auto", help="auto (a GPU when present), cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", help="run label in the results (default: 'random' or the run folder name, "
                        "plus '-threadsN' when --threads is given)")
    parser.add_argument("--note", help="a sentence stored with the run and shown in the markdown")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where generate.md/.json go")
    parser.add_argument("--no-save", action="store_true", help="print only, do not update the results files")
    args = parser.parse_args(argv)
    if min(args.tracks, args.bars, args.repeat) < 1:
        parser.error("--tracks, --bars and --repeat must be at least 1")
    unknown = [s for s in args.shapes.split(",") if s and s not in SHAPES]
    if unknown:
        parser.error(f"unknown shapes {unknown}; choose from {sorted(SHAPES)}")
    if args.cap is None:
        args.cap = 2048 if args.model else 512
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    env = environment()
    if args.model:
        loads = [(args.model.resolve().name, lambda: run_model(args.model))]
        label = args.label or args.model.resolve().name
    else:
        shapes = [s for s in args.shapes.split(",") if s]
        loads = [(s, lambda s=s: random_model(s, args.context, args.seed)) for s in shapes]
        label = args.label or "random"
    if args.threads and not args.label:
        label += f"-threads{args.threads}"
    start = time.perf_counter()
    models = [measure(name, load, args) for name, load in loads]
    run = {
        "environment": env,
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.perf_counter() - start, 1),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                     if k not in ("results_dir", "no_save", "label", "note")},
        "note": args.note,
        "models": models,
    }
    run["settings"]["device"] = models[0]["device"] if models else args.device
    for m in models:
        a, b = m["ways"]["mmmgen"], m["ways"]["tutorial"]
        print(f"{m['model']}: mmmgen {a['ms_per_token_wall']:.2f} ms/token ({a['ms_per_token_cpu']:.2f} CPU), "
              f"{a['s_per_piece']:.1f} s/piece, {100 * a['valid_share']:.0f} % valid | tutorial "
              f"{b['ms_per_token_wall']:.2f} ms/token ({b['ms_per_token_cpu']:.2f} CPU), {b['s_per_piece']:.1f} s/piece, "
              f"{100 * b['valid_share']:.0f} % valid | ratio {_fmt(m['ratio_ms_per_token_wall'])}x "
              f"({_fmt(m['ratio_ms_per_token_cpu'])}x CPU), at the same lengths {_fmt(m['ratio_same_lengths_wall'])}x "
              f"({_fmt(m['ratio_same_lengths_cpu'])}x CPU)")
    if args.no_save:
        print(json.dumps(run, indent=2))
        return 0
    path = args.results_dir / "generate.json"
    _env.merge_run(path, label, run, render_markdown, indent=2)
    print(f"results: {path} and {path.with_suffix('.md')} (run '{label}', {run['seconds']:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
