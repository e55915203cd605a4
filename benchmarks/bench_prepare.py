"""Throughput of MIDI -> MMM text encoding: ``mmmgen`` against MidiTok's ``MMM`` tokenizer.

Same files, same run, one process per method (a fresh ``spawn`` child each, so peak memory is
the method's own). Every method parses with symusic (``symusic.Score(path)``) and encodes:

* ``mmmgen.encode_file``    -- one file at a time: load + 8-bar windows + parts
* ``mmmgen.encode_files``   -- what ``mmmgen prepare`` runs: the same, ``CHUNK_FILES`` files at a time
  (encoded together by ``text.batch``)
* ``mmmgen.score_to_texts`` -- ``score_to_texts(symusic.Score(path))``: full window texts
* ``miditok.MMM(<base>)``   -- ``miditok.MMM(TokenizerConfig(base_tokenizer=<base>)).encode(path)``;
  otherwise MidiTok's default config. MMM refuses to start without ``base_tokenizer`` (one of
  MIDILike, TSD, REMI); MIDILike (NoteOn/NoteOff/TimeShift) is the closest to our scheme and the
  headline baseline.

Files: by default a seeded synthetic multitrack corpus written with symusic into a temp folder
(no external data); ``--midi-dir DIR`` uses a real folder instead. Results are merged, keyed by
corpus label, into ``benchmarks/results/prepare.json`` and rendered to ``prepare.md``.

    .venv/bin/python benchmarks/bench_prepare.py                      # synthetic corpus
    .venv/bin/python benchmarks/bench_prepare.py --midi-dir ../shared/midi-dev
    .venv/bin/python benchmarks/bench_prepare.py --midi-dir DIR --end-to-end   # + the CLI end to end

``--end-to-end`` adds, in the same run, the command a user runs (``mmmgen prepare DIR OUT
--num-proc 1``, and ``2``) timed as a subprocess against MidiTok's MMM doing the same job end to
end (``_prepare_e2e.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import _env  # benchmarks/_env.py: hardware, versions and git state of a run
import _prepare_e2e  # benchmarks/_prepare_e2e.py: the CLI end to end

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS_DIR = HERE / "results"
MIDI_SUFFIXES = {".mid", ".midi", ".kar", ".smf"}
OURS = ("mmmgen.encode_file", "mmmgen.score_to_texts", "mmmgen.encode_files")
MIDITOK_BASES = ("MIDILike", "TSD", "REMI")
HEADLINE = ("mmmgen.encode_files", "miditok.MMM(MIDILike)")  # what prepare runs
TARGET_RATIO = 5.0


# --- synthetic corpus ----------------------------------------------------------------------------
METERS = ((4, 4), (3, 4), (6, 8))
TPQS = (96, 192, 384, 480, 960)
DRUM_KIT = (36, 38, 42, 46, 45, 48, 49, 51, 39)


def _bar_ticks(meter: tuple[int, int], tpq: int) -> int:
    return meter[0] * tpq * 4 // meter[1]


def _track_notes(rng, role: str, meters: list[tuple[int, int]], tpq: int, humanize: bool):
    """(time, duration, pitch, velocity) arrays of one synthetic track over bars of ``meters``."""
    import numpy as np

    times, durs, pitches, vels = [], [], [], []
    center = {"bass": 40, "chords": 60, "melody": 72, "drums": 0}[role]
    bar_start = 0
    for meter in meters:
        length = _bar_ticks(meter, tpq)
        # subdivision of a quarter: sixteenths, eighth triplets or sixteenth triplets
        sub = int(rng.choice((4, 3, 6), p=(0.6, 0.3, 0.1)))
        step = tpq // sub
        n_steps = length // step
        density = {"bass": 0.25, "chords": 0.12, "melody": 0.45, "drums": 0.55}[role]
        onsets = np.flatnonzero(rng.random(n_steps) < density) * step
        if role == "drums":
            for t in onsets:
                for p in rng.choice(DRUM_KIT, size=int(rng.integers(1, 3)), replace=False):
                    times.append(bar_start + t)
                    durs.append(max(step // 2, 1))
                    pitches.append(int(p))
                    vels.append(int(rng.integers(50, 127)))
        else:
            for t in onsets:
                size = int(rng.integers(3, 5)) if role == "chords" else 1
                root = center + int(rng.integers(-7, 8))
                chord = [root + off for off in (0, 4, 7, 11, 14)[:size]]
                dur = int(step * rng.choice((1, 2, 3, 4, 6, 8, 12)))
                for p in chord:
                    times.append(bar_start + t)
                    durs.append(dur)  # may cross the bar line: tied notes
                    pitches.append(int(np.clip(p, 21, 108)))
                    vels.append(int(rng.integers(40, 120)))
        bar_start += length
    time_ = np.asarray(times, dtype=np.int64)
    if humanize and len(time_):
        time_ = np.maximum(time_ + rng.integers(-tpq // 32, tpq // 32 + 1, len(time_)), 0)
    return (
        time_.astype(np.int32),
        np.asarray(durs, dtype=np.int32),
        np.asarray(pitches, dtype=np.int8),
        np.asarray(vels, dtype=np.int8),
    )


def make_synthetic_corpus(out_dir: Path, n_files: int, seed: int) -> list[Path]:
    """``n_files`` seeded multitrack MIDI files: 2-8 tracks, drums, 32-64 bars, triplets, 4/4 3/4 6/8."""
    import numpy as np
    from symusic import Note, Score, Tempo, TimeSignature, Track

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_files):
        rng = np.random.default_rng([seed, i])
        tpq = int(rng.choice(TPQS))
        n_bars = int(rng.integers(32, 65))
        first = METERS[int(rng.integers(len(METERS)))]
        meters = [first] * n_bars
        score = Score(tpq)
        score.time_signatures.append(TimeSignature(0, *first))
        if rng.random() < 0.25:  # one meter change
            change_bar = int(rng.integers(8, n_bars - 8))
            second = METERS[(METERS.index(first) + int(rng.integers(1, 3))) % 3]
            meters[change_bar:] = [second] * (n_bars - change_bar)
            tick = sum(_bar_ticks(m, tpq) for m in meters[:change_bar])
            score.time_signatures.append(TimeSignature(tick, *second))
        for k in range(int(rng.integers(1, 4))):
            score.tempos.append(Tempo(k * 16 * tpq, qpm=float(rng.integers(70, 160))))
        n_tracks = int(rng.integers(2, 9))
        roles = ["drums"] if rng.random() < 0.8 else []
        roles += [
            str(rng.choice(("bass", "chords", "melody"))) for _ in range(n_tracks - len(roles))
        ]
        for j, role in enumerate(roles):
            drums = role == "drums"
            track = Track(
                name=f"{role} {j}", program=0 if drums else int(rng.integers(0, 128)), is_drum=drums
            )
            track.notes = Note.from_numpy(
                *_track_notes(rng, role, meters, tpq, humanize=rng.random() < 0.3)
            )
            track.notes.sort()
            score.tracks.append(track)
        path = out_dir / f"synth_{i:04d}.mid"
        score.dump_midi(str(path))
        paths.append(path)
    return paths


# --- methods (run in child processes) ------------------------------------------------------------
def _setup(method: str):
    """Import and build one method: returns ``encode(path) -> output size`` (0 = nothing encoded).

    Raises on a file it cannot encode; the caller counts the exception type.
    """
    if method in ("mmmgen.encode_file", "mmmgen.encode_files"):
        from mmmgen.config import CodecConfig
        from mmmgen.data.prepare import encode_file

        config = CodecConfig()

        def encode(path: str) -> int:
            result = encode_file(Path(path), Path(path).name, config)
            if result.skipped:
                raise _Skipped(result.skipped)
            return len(result.windows)

        if method == "mmmgen.encode_files":  # a timed pass encodes chunks of files, as prepare does
            from mmmgen.data.prepare import CHUNK_FILES, encode_files

            def many(paths: list[str]) -> None:
                for i in range(0, len(paths), CHUNK_FILES):
                    chunk = paths[i : i + CHUNK_FILES]
                    encode_files(chunk, [Path(p).name for p in chunk], config, [(0,)] * len(chunk))

            encode.many = many
        return encode
    if method == "mmmgen.score_to_texts":
        from symusic import Score

        from mmmgen.config import CodecConfig
        from mmmgen.text.encode import score_to_texts

        config = CodecConfig()

        def encode(path: str) -> int:
            return len(score_to_texts(Score(path), config))

        return encode
    if method.startswith("miditok.MMM(") and method.endswith(")"):
        import miditok

        base = method[len("miditok.MMM(") : -1]
        tokenizer = miditok.MMM(miditok.TokenizerConfig(base_tokenizer=base))

        def encode(path: str) -> int:
            seq = tokenizer.encode(Path(path))
            return sum(len(s.ids) for s in seq) if isinstance(seq, list) else len(seq.ids)

        return encode
    msg = f"unknown method {method!r}"
    raise ValueError(msg)


class _Skipped(Exception):
    """``encode_file`` skipped the file (its own reason, e.g. 'no notes')."""


def _output_words(method: str, path: str) -> int:
    """Words/tokens the method writes for a file (untimed; for the tokens/s column)."""
    if method in ("mmmgen.encode_file", "mmmgen.encode_files"):
        from mmmgen.config import CodecConfig
        from mmmgen.data.prepare import encode_file
        from mmmgen.text.encode import parts_to_text

        result = encode_file(Path(path), "", CodecConfig())
        texts = [parts_to_text(tuple(w["ts"]), None, w["parts"]) for w in result.windows]
    elif method == "mmmgen.score_to_texts":
        from symusic import Score

        from mmmgen.text.encode import score_to_texts

        texts = score_to_texts(Score(path))
    else:
        return -1  # MidiTok: the encode output size is already the token count
    return sum(t.count(" ") + 1 for t in texts)


_STATE: dict = {}  # the child's method, files and counters (one method per child process)


def child_setup(method: str, files: list[str]) -> dict:
    """In the child: set up ``method`` and run one untimed warm-up pass (statuses, output size)."""
    import warnings

    import psutil

    warnings.simplefilter("ignore")
    proc = psutil.Process()
    rss_start = proc.memory_info().rss
    t0 = time.perf_counter()
    encode = _setup(method)
    setup_s = time.perf_counter() - t0
    rss_ready = proc.memory_info().rss

    failed: Counter = Counter()
    failed_files: dict[str, str] = {}
    outputs = words = 0
    for path in files:
        try:
            out = encode(path)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, _Skipped) else type(exc).__name__
            failed[reason] += 1
            failed_files[Path(path).name] = f"{reason}: {exc}"[:200]
            continue
        if out == 0:
            failed["empty output"] += 1
            failed_files[Path(path).name] = "empty output"
        outputs += out
        if not method.startswith("miditok"):
            words += _output_words(method, path)
    if method.startswith("miditok"):
        words = outputs
    _STATE.update(method=method, files=files, encode=encode, rss_ready=rss_ready)
    return {
        "method": method,
        "setup_s": setup_s,
        "failed": dict(failed),
        "failed_files": failed_files,
        "outputs": outputs,
        "words": words,
        "rss_start_mib": rss_start / 2**20,
        "rss_ready_mib": rss_ready / 2**20,
    }


def child_pass() -> tuple[float, float]:
    """In the child: one timed pass over all files; (wall s, CPU s of this process)."""
    encode, files = _STATE["encode"], _STATE["files"]
    c0, w0 = time.process_time(), time.perf_counter()
    if hasattr(encode, "many"):  # a method that encodes many files at once
        encode.many(files)
    else:
        for path in files:
            try:
                encode(path)
            except Exception:
                continue
    return time.perf_counter() - w0, time.process_time() - c0


def child_peak() -> dict:
    """In the child: peak RSS of the whole child life (ru_maxrss) and its growth over setup."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak *= 1 if sys.platform == "darwin" else 1024  # Linux reports KiB, macOS bytes
    return {
        "peak_rss_mib": peak / 2**20,
        "peak_delta_mib": max(peak - _STATE["rss_ready"], 0) / 2**20,
    }


def run_methods(methods: list[str], files: list[str], repeat: int) -> dict[str, dict]:
    """One fresh spawned child per method (nothing shared: imports, peak RSS); timed passes are
    interleaved round-robin across methods so a load change on the machine hits all of them."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    pools = {m: ProcessPoolExecutor(max_workers=1, mp_context=ctx) for m in methods}
    try:
        raw = {m: pools[m].submit(child_setup, m, files).result() for m in methods}
        for m in methods:
            raw[m]["pass_s"], raw[m]["cpu_s"] = [], []
        for r in range(repeat):
            order = methods[r % len(methods) :] + methods[: r % len(methods)]
            for m in order:
                wall, cpu = pools[m].submit(child_pass).result()
                raw[m]["pass_s"].append(wall)
                raw[m]["cpu_s"].append(cpu)
            print(f"  pass {r + 1}/{repeat} done", file=sys.stderr)
        for m in methods:
            raw[m].update(pools[m].submit(child_peak).result())
    finally:
        for pool in pools.values():
            pool.shutdown()
    return raw


# --- environment -------------------------------------------------------------------------------
def environment() -> dict:
    import psutil

    return _env.environment(("mmmgen", "symusic", "miditok", "numpy"), physical_cores=psutil.cpu_count(logical=False),
                            ram_gib=round(psutil.virtual_memory().total / 2**30, 1))


# --- reporting ---------------------------------------------------------------------------------
def summarize(raw: dict, n_files: int, n_notes: int) -> dict:
    best, median = min(raw["pass_s"]), statistics.median(raw["pass_s"])
    return {
        "files_per_s_best": n_files / best,
        "files_per_s_median": n_files / median,
        "notes_per_s_best": n_notes / best,
        "notes_per_s_median": n_notes / median,
        "words_per_s_best": raw["words"] / best,
        "files_per_s_cpu_best": n_files / min(raw["cpu_s"]),
        "pass_s_best": best,
        "pass_s_median": median,
        "cpu_over_wall": sum(raw["cpu_s"]) / sum(raw["pass_s"]),
        "files_not_encoded": sum(raw["failed"].values()),
        **raw,
    }


def _dirty_note(env: dict) -> str:
    dirty = env.get("src_modified_tracked_files")
    return f" (uncommitted edits in {', '.join(dirty)})" if dirty else ""


def render_markdown(runs: dict) -> str:
    lines = [
        "# Prepare benchmark: MIDI -> MMM text",
        "",
        "Generated by `benchmarks/bench_prepare.py`; do not edit by hand. One process per method, "
        "single core, every method parses with symusic. Throughput over the whole file list "
        "(files that fail are attempted too); notes = notes of all readable input files. "
        f"Headline ratio: `{HEADLINE[0]}` / `{HEADLINE[1]}` files/s by CPU time, "
        f"target >= {TARGET_RATIO:g}x (older runs: `mmmgen.encode_file`, one file at a time; each run names its own).",
        "",
    ]
    for label, run in sorted(runs.items()):
        env, corpus = run["environment"], run["corpus"]
        hw = env["hardware"]
        lines += [
            f"## Corpus `{label}`",
            "",
            f"{corpus['files']} files, {corpus['notes']:,} notes, {corpus['mib']:.1f} MiB ({corpus['source']}); "
            f"best / median of {run['settings']['repeat']} timed passes after one warm-up pass.",
            "",
            f"{env['date']} - commit {env['git_commit']}{_dirty_note(env)} - "
            f"{hw['cpu']}, {hw['logical_cores']} logical cores, {hw['ram_gib']} GiB RAM, "
            f"load avg {hw['load_avg_1_5_15']} - {env['os']} - Python {env['python']} - "
            + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
            "",
            "| method | files/s (best) | files/s (median) | files/s (CPU time) | notes/s (best) | "
            "words or tokens/s | peak RSS MiB | RSS growth MiB | setup s | not encoded | "
            "ours/this (wall / CPU) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
        ]
        headline = run.get("headline", {}).get("ours", HEADLINE[0])  # older runs: encode_file
        ours = run["methods"].get(headline)
        for name, m in run["methods"].items():
            failed = ", ".join(f"{k}: {v}" for k, v in sorted(m["failed"].items())) or "0"
            ratio = (
                f"{ours['files_per_s_best'] / m['files_per_s_best']:.2f}x / "
                f"{ours['files_per_s_cpu_best'] / m['files_per_s_cpu_best']:.2f}x"
                if ours and name.startswith("miditok")
                else ""
            )
            lines.append(
                f"| `{name}` | {m['files_per_s_best']:.1f} | {m['files_per_s_median']:.1f} | "
                f"{m['files_per_s_cpu_best']:.1f} | "
                f"{m['notes_per_s_best']:,.0f} | {m['words_per_s_best']:,.0f} | {m['peak_rss_mib']:.0f} | "
                f"{m['peak_delta_mib']:.1f} | {m['setup_s']:.2f} | {failed} | {ratio} |"
            )
        head = run.get("headline")
        if head:
            verdict = "meets" if head["ratio_cpu"] >= TARGET_RATIO else "MISSES"
            lines += [
                "",
                f"**Headline (CPU time, `{head['ours']}` / `{head['baseline']}`): {head['ratio_cpu']:.2f}x** - wall time: best "
                f"{head['ratio_best']:.2f}x, median {head['ratio_median']:.2f}x - "
                f"{verdict} the {TARGET_RATIO:g}x target.",
            ]
        baseline = run["methods"].get(HEADLINE[1])
        for name in OURS:  # our other methods against the same baseline
            m = run["methods"].get(name)
            if m and baseline and name != headline:
                lines += [
                    "",
                    f"`{name}` / `{HEADLINE[1]}`: {m['files_per_s_cpu_best'] / baseline['files_per_s_cpu_best']:.2f}x "
                    f"by CPU time, {m['files_per_s_best'] / baseline['files_per_s_best']:.2f}x by wall time (best).",
                ]
        if run.get("end_to_end"):
            lines += _prepare_e2e.markdown(run["end_to_end"], head["ratio_cpu"] if head else None, TARGET_RATIO)
        if run.get("note"):
            lines += ["", f"Note: {run['note']}"]
        busy = min(m["cpu_over_wall"] for m in run["methods"].values())
        if busy < 0.9:
            lines += [
                "",
                f"Note: the machine was busy during this run (CPU/wall as low as {busy:.2f}; "
                "single-threaded code should be near 1.0), so wall-time rates are too low and noisy; "
                "the CPU-time columns are the ones to compare.",
            ]
        lines += [""]
    lines += [
        "Columns: *words or tokens/s* counts MMM words of the full window texts for mmmgen "
        "(encode_file: texts assembled from its parts, untimed) and token ids for MidiTok; the two "
        "vocabularies differ, so compare files/s and notes/s. *RSS growth* = peak RSS minus RSS "
        "after imports and setup. *files/s (CPU time)* uses the child's CPU time instead of wall "
        "time (less sensitive to other load on the machine). *ours/this* = the headline's method (ours) "
        "best files/s over that row's. Timed passes are interleaved round-robin across methods.",
        "",
    ]
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------
def count_notes(files: list[Path]) -> tuple[int, int]:
    """Total notes of readable files and the number of unreadable files (symusic)."""
    from symusic import Score

    notes, unreadable = 0, 0
    for path in files:
        try:
            notes += Score(str(path)).note_num()
        except Exception:
            unreadable += 1
    return notes, unreadable


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark MIDI -> MMM text encoding: mmmgen against MidiTok's MMM tokenizer.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--midi-dir", type=Path, help="real MIDI folder (recursive); default: synthetic corpus"
    )
    parser.add_argument(
        "--max-files", type=int, default=None, help="use at most N files (first N, sorted)"
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="timed passes per method (best and median reported)"
    )
    parser.add_argument(
        "--synthetic-files", type=int, default=200, help="files in the synthetic corpus"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic corpus")
    parser.add_argument(
        "--keep-synthetic", type=Path, help="write the synthetic corpus here and keep it"
    )
    parser.add_argument(
        "--miditok-bases",
        default=",".join(MIDITOK_BASES),
        help="MidiTok MMM base tokenizers to compare against",
    )
    parser.add_argument(
        "--no-score-to-texts", action="store_true", help="skip the mmmgen.score_to_texts variant"
    )
    parser.add_argument(
        "--label", help="corpus label in the results (default: 'synthetic' or the folder name)"
    )
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIR, help="where prepare.md/.json go"
    )
    parser.add_argument(
        "--no-save", action="store_true", help="print only, do not update the results files"
    )
    parser.add_argument(
        "--end-to-end", action="store_true",
        help="also time `mmmgen prepare` (subprocess) against MidiTok's MMM end to end on the same folder",
    )
    parser.add_argument("--e2e-repeat", type=int, default=3, help="interleaved end-to-end runs per command")
    parser.add_argument("--e2e-num-proc", default="1,2", help="--num-proc values of the end-to-end `mmmgen prepare` runs")
    parser.add_argument("--note", default="", help="a remark stored with the run and printed under its tables")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.end_to_end and args.max_files:
        parser.error("--end-to-end times the whole folder: leave out --max-files")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    methods = [OURS[0], OURS[2]] + ([] if args.no_score_to_texts else [OURS[1]])
    methods += [f"miditok.MMM({b.strip()})" for b in args.miditok_bases.split(",") if b.strip()]

    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        if args.midi_dir:
            root = args.midi_dir
            files = sorted(
                p for p in root.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file()
            )
            label = args.label or args.midi_dir.resolve().name
            source = f"folder {args.midi_dir}"
        else:
            out = args.keep_synthetic or Path(tmp) / "synthetic"
            t0 = time.perf_counter()
            files = make_synthetic_corpus(out, args.synthetic_files, args.seed)
            print(
                f"wrote {len(files)} synthetic files in {time.perf_counter() - t0:.1f} s to {out}",
                file=sys.stderr,
            )
            label = args.label or "synthetic"
            source = (
                f"synthetic, seed {args.seed}: 2-8 tracks, drums, 32-64 bars, triplets, 4/4 3/4 6/8"
            )
        if args.max_files:
            files = files[: args.max_files]
        if not files:
            print(f"no MIDI files found under {args.midi_dir}", file=sys.stderr)
            return 2
        n_notes, unreadable = count_notes(files)
        corpus = {
            "source": source,
            "files": len(files),
            "unreadable_by_symusic": unreadable,
            "notes": n_notes,
            "mib": sum(p.stat().st_size for p in files) / 2**20,
        }
        print(
            f"{label}: {len(files)} files, {n_notes:,} notes, repeat {args.repeat}", file=sys.stderr
        )
        env = environment()
        results = {}
        raw = run_methods(methods, [str(p) for p in files], args.repeat)
        e2e = None
        if args.end_to_end:
            e2e_root = args.midi_dir or out
            e2e_methods = [_prepare_e2e.ours(int(n)) for n in args.e2e_num_proc.split(",") if n.strip()]
            e2e_methods.append(_prepare_e2e.MIDITOK_E2E)
            e2e_raw = _prepare_e2e.run(Path(e2e_root), Path(tmp), e2e_methods, args.e2e_repeat)
            e2e = {"repeat": args.e2e_repeat, "methods": e2e_raw, "ratios": _prepare_e2e.ratios(e2e_raw)}
            for m, ratio in e2e["ratios"].items():
                print(f"  e2e MidiTok / {m}: wall best {ratio['wall_best']:.2f}x, CPU {ratio['cpu_best']:.2f}x", file=sys.stderr)
        for method in methods:
            results[method] = summarize(raw[method], len(files), n_notes)
            m = results[method]
            print(
                f"  {method:24s} {m['files_per_s_best']:7.1f} files/s (CPU {m['files_per_s_cpu_best']:.1f})  "
                f"{m['notes_per_s_best']:>10,.0f} notes/s  "
                f"peak {m['peak_rss_mib']:.0f} MiB (+{m['peak_delta_mib']:.1f})  not encoded {m['failed'] or 0}",
                file=sys.stderr,
            )

    run = {
        "environment": env,
        "corpus": corpus,
        "settings": {
            "repeat": args.repeat,
            "max_files": args.max_files,
            "methods": methods,
            "codec": "mmmgen.config.CodecConfig() defaults",
            "miditok_config": "TokenizerConfig(base_tokenizer=<base>), defaults otherwise",
            "processes": "one spawned child per method, single-threaded loop",
        },
        "methods": results,
    }
    if e2e:
        run["end_to_end"] = e2e
    if args.note:
        run["note"] = args.note
    if all(h in results for h in HEADLINE):
        a, b = results[HEADLINE[0]], results[HEADLINE[1]]
        run["headline"] = {
            "ours": HEADLINE[0],
            "baseline": HEADLINE[1],
            "ratio_best": a["files_per_s_best"] / b["files_per_s_best"],
            "ratio_median": a["files_per_s_median"] / b["files_per_s_median"],
            "ratio_cpu": a["files_per_s_cpu_best"] / b["files_per_s_cpu_best"],
            "target": TARGET_RATIO,
        }
        h = run["headline"]
        print(
            f"headline {HEADLINE[0]} / {HEADLINE[1]}: CPU time {h['ratio_cpu']:.2f}x, "
            f"wall best {h['ratio_best']:.2f}x (target {TARGET_RATIO:g}x)",
            file=sys.stderr,
        )
    if args.no_save:
        print(json.dumps(run, indent=2))
        return 0
    json_path, md_path = args.results_dir / "prepare.json", args.results_dir / "prepare.md"
    _env.merge_run(json_path, label, run, render_markdown, key="runs", indent=2)
    print(f"wrote {md_path} and {json_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
