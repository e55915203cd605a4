"""Soak test of the web app: several gradio_client sessions loop over every action for a while.

Starts ``mmmgen app`` (the shipped default model) in a subprocess with its own temporary folders
(``TMPDIR`` for the render folders, ``GRADIO_TEMP_DIR`` for gradio's cache), then ``--sessions``
clients (threads, one ``gradio_client.Client`` each) loop over every action of the API until
``--minutes`` have passed: start (with 2 takes), session_info, keep_take, add, regenerate_last
(scale lock), regenerate_bars, change_tempo, undo, redo, remove_last, upload (a small MIDI file,
Jazz kit), add in the key of the uploaded MIDI. Every ``--sample-s`` seconds it records the server's
resident memory (RSS) and the files and bytes in its temporary folders.

Pass: no error (an exception from a call, or a warning instead of a result), RSS growth at most
100 MB from the end of the first round (warm caches) to the end, and temporary files bounded: the
render folders' files in the last quarter of the run not above the first half's maximum (+ one
round's worth), gradio's copies not above 1.25x the first half's maximum (+ 50); the app runs with
``--cache-minutes`` (3 here) so gradio's time-based cleanup shows within the run.

    .venv/bin/python benchmarks/soak_app.py                      # 10 minutes, 4 sessions
    .venv/bin/python benchmarks/soak_app.py --minutes 3

Results go to ``benchmarks/results/soak_app.json`` and ``soak_app.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CONTROLS = {"temperature": 0.9, "genre": "RANDOM", "instrument": "Model's choice", "density": "auto", "tempo": 120, "seed": 0, "bars": 2}
EXTRA = {"top_p": 0.95, "top_k": 0, "meter": "4/4", "scale": "off", "pitch_low": 0, "pitch_high": 127, "drum_kit": "Standard", "takes": 1}
WARNING = {"__type__": "update"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def folder_size(path: Path) -> tuple[int, int]:
    files = size = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                size += (Path(root) / name).stat().st_size
                files += 1
            except OSError:
                pass
    return files, size


def small_midi(path: Path) -> Path:
    from symusic import Note, Score, Track

    score = Score(480)
    piano, drums = Track(program=0), Track(program=0, is_drum=True)
    for i, pitch in enumerate([57, 60, 64, 62, 60, 59, 57, 64] * 2):
        piano.notes.append(Note(i * 480, 480, pitch, 80))
        drums.notes.append(Note(i * 480, 120, 36 if i % 2 == 0 else 38, 90))
    score.tracks.extend([piano, drums])
    score.dump_midi(str(path))
    return path


def session_loop(url: str, k: int, midi: Path, until: float, counts: Counter, errors: list, rounds: list, lock) -> None:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=False)
    n = 0

    def call(api: str, *args, check: bool = True, **overrides):
        if not args:
            args = tuple({**CONTROLS, **EXTRA, **overrides}.values())
        try:
            out = client.predict(*args, api_name=api)
        except Exception as exc:  # counted: the soak passes only without any
            with lock:
                errors.append(f"session {k} {api}: {exc.__class__.__name__}: {str(exc)[:200]}")
            return None
        with lock:
            counts[api] += 1
        if check and isinstance(out, (tuple, list)) and out and out[-1] == WARNING:
            with lock:
                errors.append(f"session {k} {api}: a warning instead of a result")
        return out

    while time.time() < until:
        seed = 1000 * k + n
        call("/start", seed=seed, takes=2)
        call("/session_info", check=False)
        call("/keep_take", "2")
        call("/add", seed=seed + 1)
        call("/regenerate_last", seed=seed + 2, scale="C:major")
        call("/regenerate_bars", *{**CONTROLS, "seed": seed + 3, "track": 1, "first": 1, "last": 2, **EXTRA}.values())
        call("/change_tempo", tempo=100)
        call("/undo")
        call("/redo")
        call("/remove_last")
        call("/upload", handle_file(str(midi)), 120, "Jazz")
        call("/add", seed=seed + 4, scale="Key of the uploaded MIDI", drum_kit="Jazz")
        n += 1
        with lock:
            rounds.append((k, n, time.time()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--cache-minutes", type=float, default=3.0, help="the app's --cache-minutes (gradio's copies kept this long)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    import psutil

    work = Path(tempfile.mkdtemp(prefix="mmmgen-soak-"))
    (work / "tmp").mkdir()
    (work / "gradio").mkdir()
    midi = small_midi(work / "upload.mid")
    port = free_port()
    env = {**os.environ, "TMPDIR": str(work / "tmp"), "GRADIO_TEMP_DIR": str(work / "gradio"), "GRADIO_ANALYTICS_ENABLED": "False",
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    server = subprocess.Popen([sys.executable, "-m", "mmmgen", "app", "--port", str(port), "--queue-size", "32", "--cache-minutes", str(args.cache_minutes)], env=env,
                              stdout=subprocess.DEVNULL, stderr=open(work / "server.log", "w"),
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a background shell ignores Ctrl+C
    url = f"http://127.0.0.1:{port}/"
    proc = psutil.Process(server.pid)
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(1)
    started = time.time()
    until = started + args.minutes * 60
    counts, errors, rounds, lock = Counter(), [], [], threading.Lock()
    threads = [threading.Thread(target=session_loop, args=(url, k, midi, until, counts, errors, rounds, lock), daemon=True)
               for k in range(args.sessions)]
    for t in threads:
        t.start()
    samples = []
    while any(t.is_alive() for t in threads):
        files, size = folder_size(work / "tmp")
        gfiles, gsize = folder_size(work / "gradio")
        samples.append({"t_s": round(time.time() - started), "rss_mb": round(proc.memory_info().rss / 2**20, 1),
                        "render_files": files, "render_mb": round(size / 2**20, 2), "gradio_files": gfiles, "gradio_mb": round(gsize / 2**20, 2)})
        time.sleep(args.sample_s)
    for t in threads:
        t.join()
    files, size = folder_size(work / "tmp")
    gfiles, gsize = folder_size(work / "gradio")
    samples.append({"t_s": round(time.time() - started), "rss_mb": round(proc.memory_info().rss / 2**20, 1),
                    "render_files": files, "render_mb": round(size / 2**20, 2), "gradio_files": gfiles, "gradio_mb": round(gsize / 2**20, 2)})
    layout = {str(d.relative_to(work / "tmp")): sum(1 for _ in d.rglob("*")) for d in (work / "tmp").glob("*/*") if d.is_dir()}
    server.send_signal(signal.SIGINT)  # as Ctrl+C: the app exits and removes its render folder
    try:
        server.wait(timeout=90)
        left = folder_size(work / "tmp")[0]  # the render folder is removed when the app exits
    except subprocess.TimeoutExpired:  # reported, not hidden
        server.kill()
        server.wait()
        left = None

    first_round = min((t for _, n, t in rounds if n == 1), default=started) - started
    after_warm = [s for s in samples if s["t_s"] >= first_round] or samples
    quarter = max(len(samples) // 4, 1)
    result = {
        "env": _env.environment(("mmmgen", "gradio", "gradio_client", "torch", "symusic"), machine_note="shared 2-core CPU (other jobs ran alongside)"),
        "minutes": args.minutes,
        "cache_minutes": args.cache_minutes,
        "sessions": args.sessions,
        "calls": dict(counts),
        "rounds": len(rounds),
        "errors": errors[:20],
        "n_errors": len(errors),
        "rss_start_mb": samples[0]["rss_mb"],
        "rss_after_first_round_mb": after_warm[0]["rss_mb"],
        "rss_end_mb": samples[-1]["rss_mb"],
        "rss_max_mb": max(s["rss_mb"] for s in samples),
        "rss_growth_after_first_round_mb": round(samples[-1]["rss_mb"] - after_warm[0]["rss_mb"], 1),
        "render_files_max": max(s["render_files"] for s in samples),
        "render_files_first_half_max": max(s["render_files"] for s in samples[: 2 * quarter]),
        "gradio_files_first_half_max": max(s["gradio_files"] for s in samples[: 2 * quarter]),
        "gradio_files_last_quarter_max": max(s["gradio_files"] for s in samples[-quarter:]),
        "render_files_last_quarter_max": max(s["render_files"] for s in samples[-quarter:]),
        "gradio_files_max": max(s["gradio_files"] for s in samples),
        "gradio_mb_max": max(s["gradio_mb"] for s in samples),
        "render_files_left_after_exit": left,
        "samples": samples,
        "tmp_layout_at_end": dict(sorted(layout.items())[:50]),
        "tmp_dirs_at_end": len(layout),
    }
    result["pass"] = (result["n_errors"] == 0 and result["rss_growth_after_first_round_mb"] <= 100
                      and result["render_files_last_quarter_max"] <= result["render_files_first_half_max"] + 3 * 7 * args.sessions
                      and result["gradio_files_last_quarter_max"] <= result["gradio_files_first_half_max"] * 1.25 + 50)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "soak_app.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.results_dir / "soak_app.md").write_text(markdown(result))
    print((args.results_dir / "soak_app.md").read_text())
    return 0 if result["pass"] else 1


def markdown(r: dict) -> str:
    e = r["env"]
    lines = [
        "# App soak (benchmarks/soak_app.py)",
        "",
        f"{r['sessions']} gradio_client sessions looping over every action for {r['minutes']} minutes against `mmmgen app`",
        f"(shipped default model, 2-bar pieces, concurrency 1, `--cache-minutes {r['cache_minutes']}`). Memory baseline: the server's RSS"
        " after the first round. Files are bounded when the last quarter's maximum is not above the first half's (+ one round's worth).",
        "",
        f"- date {e['date']}, CPU {e['hardware']['cpu']} ({e['hardware']['logical_cores']} logical cores), {e['hardware'].get('machine_note', '')}",
        f"- load average {e['hardware']['load_avg_1_5_15']}, Python {e['python']}, versions {e['versions']}, git {e['git_commit']}",
        "",
        f"- **pass: {r['pass']}**; rounds {r['rounds']}, calls {sum(r['calls'].values())} ({', '.join(f'{k} {v}' for k, v in sorted(r['calls'].items()))})",
        f"- errors: {r['n_errors']}" + ("".join(f"\n  - {x}" for x in r["errors"]) if r["errors"] else ""),
        f"- RSS: start {r['rss_start_mb']} MB, after the first round {r['rss_after_first_round_mb']} MB, end {r['rss_end_mb']} MB,"
        f" max {r['rss_max_mb']} MB; growth after the first round **{r['rss_growth_after_first_round_mb']} MB** (limit 100)",
        f"- render files (mmmgen's temp folder): max {r['render_files_max']}, first-half max {r['render_files_first_half_max']},"
        f" last-quarter max {r['render_files_last_quarter_max']}; left after the app exits (Ctrl+C): {r['render_files_left_after_exit']}"
        f"{' (it did not exit within 90 s of Ctrl+C and was killed)' if r['render_files_left_after_exit'] is None else ''}",
        f"- gradio's cache: max {r['gradio_files_max']} files, {r['gradio_mb_max']} MB; first-half max {r['gradio_files_first_half_max']},"
        f" last-quarter max {r['gradio_files_last_quarter_max']} files",
        "",
        "| t (s) | RSS (MB) | render files | render MB | gradio files | gradio MB |",
        "|---|---|---|---|---|---|",
    ]
    step = max(len(r["samples"]) // 20, 1)
    for s in r["samples"][::step] + ([r["samples"][-1]] if (len(r["samples"]) - 1) % step else []):
        lines.append(f"| {s['t_s']} | {s['rss_mb']} | {s['render_files']} | {s['render_mb']} | {s['gradio_files']} | {s['gradio_mb']} |")
    return "\n".join([*lines, ""])


if __name__ == "__main__":
    raise SystemExit(main())
