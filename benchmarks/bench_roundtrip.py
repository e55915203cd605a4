"""A MIDI file in is a MIDI file out (issue 25): over real multitrack songs, how many keep their tempo map,
meter, track names, programs and drum kits when read as a song and written back as MIDI, and through
``extend`` with the shipped model.

Baseline, in the same run: the text alone (what ``extend`` wrote before ``Song.meta``: the decoded
text at 120 BPM, tracks named "Track N", drums on kit 0). Each song is read as ``mmmgen extend`` reads
it (``prompt_song``, every bar up to 256) and compared with the file over the bars the song keeps.

    python benchmarks/bench_roundtrip.py                      # ../shared/midi-dev/multitrack + ../shared/corpora/lmd-beatles
    python benchmarks/bench_roundtrip.py --extend 12          # also extend 12 songs by 1 bar with the shipped model
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _env import ROOT, environment, merge_run

SHARED = ROOT.parent / "shared"
FOLDERS = (SHARED / "midi-dev" / "multitrack", SHARED / "corpora" / "lmd-beatles")
RESULTS = ROOT / "benchmarks" / "results" / "roundtrip.json"
FACTS = ("tempo_map", "meter", "names", "programs", "drum_kits")


def song_start(original, grid: int = 12) -> float:
    """Quarters from the file's start to where ``prompt_song`` starts the song: the first stretch of one
    spellable meter in which a note sounds."""
    from mmmgen.text import vocab as V
    from mmmgen.text.encode import meter_segments
    from mmmgen.text.vocab import bar_steps

    for start, n_bars, meter in meter_segments(original, grid):
        if V.parse_time_signature(f"{meter[0]}_{meter[1]}") is None:
            continue
        a, b = start * original.tpq / grid, (start + n_bars * bar_steps(meter, grid)) * original.tpq / grid
        for track in original.tracks:
            notes = track.notes.numpy()
            if len(notes["time"]) and ((notes["time"] < b) & (notes["time"] + notes["duration"] > a)).any():
                return start / grid
    return 0.0


def kept_facts(original, out, song) -> dict[str, bool]:
    """Which of the file's facts the written score ``out`` keeps, over the bars of ``song``."""
    meter, tpq = song.time_signature, original.tpq
    start = song_start(original)
    end = start + song.n_bars * meter[0] * 4 / meter[1]  # quarters
    by_time = {t.time / tpq: round(t.qpm, 2) for t in sorted(original.tempos, key=lambda t: t.time)}  # the last of one instant sounds
    before = [qpm for at, qpm in by_time.items() if at <= start]
    want = ([(0.0, before[-1])] if before else []) + [(at - start, qpm) for at, qpm in by_time.items() if start < at < end]
    want = want or [(0.0, 120.0)]
    got = [(t.time / out.tpq, round(t.qpm, 2)) for t in out.tempos]
    sources = []  # the tracks with notes in the kept bars
    for track in original.tracks:
        notes = track.notes.numpy()
        if len(notes["time"]) and ((notes["time"] < end * tpq) & (notes["time"] + notes["duration"] > start * tpq)).any():
            sources.append(track)
    pairs = list(zip(sources, out.tracks, strict=False)) if len(sources) == len(out.tracks) else []
    return {
        "tempo_map": len(got) == len(want) and all(abs(a - c) <= 1 / out.tpq and b == d for (a, b), (c, d) in zip(got, want, strict=True)),
        "meter": (out.time_signatures[0].numerator, out.time_signatures[0].denominator) == meter,
        "names": bool(pairs) and all(o.name == s.name for s, o in pairs if s.name),
        "programs": bool(pairs) and all(o.program == s.program for s, o in pairs if not s.is_drum),
        "drum_kits": bool(pairs) and all(o.program == s.program for s, o in pairs if s.is_drum),
    }


def songs(limit: int | None) -> list[Path]:
    files = [p for folder in FOLDERS if folder.is_dir() for p in sorted(folder.rglob("*.mid"))]
    return files[:limit] if limit else files


def measure(paths: list[Path], extend: int) -> dict:
    from symusic import Score

    from mmmgen.data.prepare import load_score
    from mmmgen.generate.prompt import prompt_song, song_to_score
    from mmmgen.generate.sampling import Sampling
    from mmmgen.model.run import find_run, generator_from_run
    from mmmgen.render.midi import midi_bytes
    from mmmgen.text.decode import text_to_score

    generator, settings = generator_from_run(find_run("default"))
    counts = {way: dict.fromkeys(FACTS, 0) for way in ("text_only", "song_meta", "extend")}
    read, failed, extended, tempo_changes = 0, [], 0, 0
    for k, path in enumerate(paths):
        try:
            original = load_score(path)
            song = prompt_song(path, settings)
        except Exception as exc:  # what prepare would skip too: counted, named
            failed.append((path.name, "read", type(exc).__name__))
            continue
        read += 1
        tempo_changes += sum(1 for t in original.tempos if t.time > 0) > 0
        ways = {"text_only": text_to_score(song.text, generator.grid, tempo=120.0), "song_meta": song_to_score(song, generator.grid)}
        if k < extend:
            try:
                longer = generator.extend(song, 1, Sampling(seed=k))
                ways["extend"] = song_to_score(longer, generator.grid)
                extended += 1
            except Exception as exc:
                failed.append((path.name, "extend", f"{type(exc).__name__}: {str(exc)[:80]}"))
        for way, score in ways.items():
            for fact, ok in kept_facts(original, Score.from_midi(midi_bytes(score)), song).items():
                counts[way][fact] += ok
    return {"songs": len(paths), "read": read, "with_tempo_changes": tempo_changes, "extended": extended,
            "kept": counts, "failed": failed}


def render(runs: dict) -> str:
    lines = ["# A MIDI file in is a MIDI file out (bench_roundtrip.py)", "",
             "Songs read as `mmmgen extend` reads them, written back as MIDI, compared with the file over the kept bars.",
             "`text_only`: the baseline (the text alone, as before `Song.meta`); `song_meta`: `song_to_score`; "
             "`extend`: after `extend` by 1 bar with the shipped model (the first N songs).", ""]
    for label, run in runs.items():
        r = run["result"]
        lines += [f"## {label}", "", f"{r['songs']} songs, {r['read']} read ({r['with_tempo_changes']} with tempo changes), "
                  f"{r['extended']} extended; {run['seconds']} s; load {run['env']['hardware']['load_avg_1_5_15']}", "",
                  "| | " + " | ".join(FACTS) + " |", "|---" * (len(FACTS) + 1) + "|"]
        for way, kept in r["kept"].items():
            n = r["extended"] if way == "extend" else r["read"]
            lines.append(f"| {way} (of {n}) | " + " | ".join(f"{kept[f]}" for f in FACTS) + " |")
        lines += ["", "Failed: " + (", ".join(f"{name} ({stage}: {why})" for name, stage, why in r["failed"]) or "none"), ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="At most this many songs.")
    parser.add_argument("--extend", type=int, default=0, help="Extend the first N songs by one bar with the shipped model.")
    parser.add_argument("--label", default="default")
    args = parser.parse_args()
    started = time.time()
    result = measure(songs(args.limit), args.extend)
    run = {"result": result, "seconds": round(time.time() - started, 1), "env": environment(("torch", "transformers", "symusic"))}
    merge_run(RESULTS, args.label, run, render)
    print(RESULTS.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
