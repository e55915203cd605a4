"""Control obedience: do generated tracks obey the musical controls, checked on the rendered MIDI?

For each control (scale lock, pitch range, maximum polyphony, shortest note, longest note, and all
of them at once) the shipped default model writes ``--tracks`` one-track pieces of ``--bars`` bars
(a melodic instrument each, seed = track number); each piece is rendered to a MIDI file
(``write_midi``), read back with symusic, and every note is checked: pitch class in the scale,
pitch within the range, at most N notes sounding at once, duration within the note-length limits.
The baseline is the same model, seeds and instruments WITHOUT controls in the same run: its
"obeys by chance" share shows that the checks can fail, and the time ratio controls/baseline is
the cost of the extra rules. Runs are interleaved (baseline, then each control, per seed).

    .venv/bin/python benchmarks/bench_controls.py              # 50 tracks per control
    .venv/bin/python benchmarks/bench_controls.py --tracks 10  # quicker

Results go to ``benchmarks/results/controls.json`` and ``controls.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SCALES = ("C:major", "A:minor", "D:dorian", "E:phrygian", "F:lydian", "G:mixolydian", "B:locrian", "Eb:major-pentatonic", "F#:minor-pentatonic")
INSTRUMENTS = (0, 4, 24, 33, 40, 48, 56, 65, 73, 80)  # piano, e-piano, guitar, bass, violin, strings, trumpet, sax, flute, lead


def configs(i: int):
    """The controls under test for track ``i`` (the scale rotates through every mode)."""
    from mmmgen.generate.controls import Controls

    scale = SCALES[i % len(SCALES)]
    return {
        "scale": Controls(scale=scale),
        "pitch range 48-72": Controls(pitch_range=(48, 72)),
        "max polyphony 1": Controls(max_polyphony=1),
        "min note 0.5 quarter": Controls(min_note=0.5),
        "max note 1 quarter": Controls(max_note=1.0),
        "all at once": Controls(scale=scale, pitch_range=(55, 79), max_polyphony=3, min_note=0.25, max_note=2.0),
    }


def midi_notes(song, grid: int) -> list[tuple[int, int, int]]:
    """``(pitch, start, end)`` in grid steps of the melodic notes of the song's rendered MIDI file."""
    from symusic import Score

    from mmmgen.render.files import write_midi
    from mmmgen.text.decode import text_to_score

    with tempfile.TemporaryDirectory() as d:
        path = write_midi(text_to_score(song.text, grid, tempo=song.tempo), Path(d) / "piece.mid")
        score = Score(str(path))
    tpq = score.ticks_per_quarter
    notes = []
    for track in score.tracks:
        if track.is_drum:
            continue
        notes += [(n.pitch, round(n.start * grid / tpq), round(n.end * grid / tpq)) for n in track.notes]
    return notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=50, help="tracks per control")
    parser.add_argument("--bars", type=int, default=2)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from mmmgen.generate.controls import violations
    from mmmgen.generate.sampling import Sampling
    from mmmgen.model.run import find_run, generator_from_run

    generator, _ = generator_from_run(find_run(None))
    grid = generator.grid
    names = ["baseline", *configs(0)]
    stats = {n: {"tracks": 0, "obeyed": 0, "notes": 0, "seconds": 0.0, "errors": 0, "first_violation": None} for n in names}
    chance = {n: 0 for n in configs(0)}  # baseline tracks that happen to obey each control
    t_start = time.time()
    for i in range(args.tracks):
        sampling = Sampling(seed=1000 + i)
        inst = (INSTRUMENTS[i % len(INSTRUMENTS)], False)
        for name in names:
            controls = None if name == "baseline" else configs(i)[name]
            t0 = time.perf_counter()
            try:
                song = generator.start("POP", n_bars=args.bars, instrument=inst, sampling=sampling, controls=controls)
            except Exception as exc:  # counted and reported: a control must never make generation fail
                stats[name]["errors"] += 1
                stats[name]["first_violation"] = stats[name]["first_violation"] or f"seed {1000 + i}: {exc}"
                continue
            stats[name]["seconds"] += time.perf_counter() - t0
            notes = midi_notes(song, grid)
            s = stats[name]
            s["tracks"] += 1
            s["notes"] += len(notes)
            if name == "baseline":
                for c_name, c in configs(i).items():
                    chance[c_name] += not violations(notes, c, grid)
                continue
            found = violations(notes, controls, grid)
            s["obeyed"] += not found
            if found and s["first_violation"] is None:
                s["first_violation"] = f"seed {1000 + i}: {found[0]}"
        print(f"{i + 1}/{args.tracks} tracks per control ({time.time() - t_start:.0f} s)", file=sys.stderr)

    base = stats["baseline"]
    rows = []
    for name in names[1:]:
        s = stats[name]
        rows.append({
            "control": name,
            "tracks": s["tracks"],
            "errors": s["errors"],
            "obeyed": s["obeyed"],
            "obeyed_pct": round(100 * s["obeyed"] / max(s["tracks"], 1), 1),
            "baseline_obeys_by_chance_pct": round(100 * chance[name] / max(base["tracks"], 1), 1),
            "notes": s["notes"],
            "s_per_track": round(s["seconds"] / max(s["tracks"], 1), 3),
            "time_ratio_vs_baseline": round((s["seconds"] / max(s["tracks"], 1)) / (base["seconds"] / max(base["tracks"], 1)), 2),
            "first_violation": s["first_violation"],
        })
    env = _env.environment(("mmmgen", "torch", "transformers", "numpy", "symusic"), machine_note="shared 2-core CPU (other jobs ran alongside); torch threads 1")
    result = {
        "env": env,
        "model": "shipped default (src/mmmgen/resources/default_model)",
        "bars": args.bars,
        "tracks_per_control": args.tracks,
        "baseline": {"tracks": base["tracks"], "notes": base["notes"], "s_per_track": round(base["seconds"] / max(base["tracks"], 1), 3)},
        "rows": rows,
        "seconds": round(time.time() - t_start),
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "controls.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.results_dir / "controls.md").write_text(markdown(result))
    print((args.results_dir / "controls.md").read_text())
    return 0 if all(r["obeyed"] == r["tracks"] and not r["errors"] for r in rows) else 1


def markdown(r: dict) -> str:
    e = r["env"]
    lines = [
        "# Control obedience (benchmarks/bench_controls.py)",
        "",
        f"{r['tracks_per_control']} one-track pieces of {r['bars']} bars per control, {r['model']}; each rendered to MIDI,",
        "read back with symusic and every melodic note checked. Baseline: same seeds and instruments without controls,",
        "interleaved in the same run (its 'obeys by chance' share shows the check can fail).",
        "",
        f"- date {e['date']}, CPU {e['hardware']['cpu']} ({e['hardware']['logical_cores']} logical cores), {e['hardware'].get('machine_note', '')}",
        f"- load average {e['hardware']['load_avg_1_5_15']}, Python {e['python']}, versions {e['versions']}, git {e['git_commit']}",
        f"- baseline: {r['baseline']['tracks']} tracks, {r['baseline']['s_per_track']} s per track; whole run {r['seconds']} s",
        "",
        "| control | tracks | errors | obeyed | baseline obeys by chance | notes | s/track | time vs baseline |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        lines.append(
            f"| {row['control']} | {row['tracks']} | {row['errors']} | {row['obeyed']} ({row['obeyed_pct']} %) | "
            f"{row['baseline_obeys_by_chance_pct']} % | {row['notes']} | {row['s_per_track']} | {row['time_ratio_vs_baseline']}x |"
        )
    bad = [f"- {row['control']}: {row['first_violation']}" for row in r["rows"] if row["first_violation"]]
    lines += ["", *(["First violation or error per control:", *bad] if bad else ["No violation and no error."]), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
