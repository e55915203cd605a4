"""Generation over a chord progression: do the notes follow the chords, and can the chords be read back?

For each of 20 progressions (common pop and jazz ones, and non-diatonic ones) the shipped default
model writes a piece of ``--tracks`` tracks and ``--bars`` bars over it (``generate_song(...,
chords=...)``, the model choosing the instruments, seed = progression number), once per chord rule:
``off`` (the baseline: the same model, seeds and chords with no rule, so the model alone), ``loose``
and ``strict``. Each piece is rendered to MIDI, read back with symusic, and measured:

* chord tones on beats: the share of pitched notes sounding at beat starts (counted once per beat
  they sound on) whose pitch class is a tone of that beat's chord (target: >= 90 % loose, 100 % strict);
* read back: ``read_chords`` (text/harmony.py) of the rendered MIDI against the progression asked
  for, in the MIREX "majmin" classes (root + major or minor; chords of neither class, e.g. dim,
  hdim7, sus, are left out): the share of beats that agree, and of bars whose beats mostly agree
  (target: >= 90 % of bars). The same measure of the progression alone played as block chords
  (``render/chords.py``) is the reader's ceiling: what it cannot tell apart even then.

    nice -n 10 .venv/bin/python benchmarks/bench_chord_gen.py            # 20 progressions
    nice -n 10 .venv/bin/python benchmarks/bench_chord_gen.py --limit 4  # quicker

Results go to ``benchmarks/results/chord_gen.json`` and ``chord_gen.md`` (stored under ``--label``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PROGRESSIONS = (  # (name, progression): a chord per bar unless beats are given
    ("pop I-V-vi-IV", "C G Am F"),
    ("pop vi-IV-I-V", "Am F C G"),
    ("50s I-vi-IV-V", "C Am F G"),
    ("royal road", "Fmaj7 G7 Em7 Am"),
    ("rock I-IV-V-IV", "D G A G"),
    ("pop in E", "E B C#m A"),
    ("pachelbel", "D:2 A:2 | Bm:2 F#m:2 | G:2 D:2 | G:2 A:2"),
    ("andalusian", "Am G F E"),
    ("jazz ii-V-I", "Dm7 G7 Cmaj7 Cmaj7"),
    ("jazz I-vi-ii-V", "Cmaj7 Am7 Dm7 G7"),
    ("minor ii-V-i", "Bm7b5 E7 Am7 Am7"),
    ("blues", "C7 F7 C7 G7"),
    ("autumn leaves", "Am7 D7 Gmaj7 Cmaj7"),
    ("bebop turnaround", "Cmaj7:2 A7:2 | Dm7:2 G7:2"),
    ("mixolydian bVII", "C Bb F C"),
    ("borrowed bVI-bVII", "C Ab Bb C"),
    ("chromatic mediant", "C E Ab C"),
    ("secondary dominant", "C E7 Am F"),
    ("minor with major V", "Em C D B7"),
    ("minor iv plagal", "F Fm C C"),
)
MAJ = {"maj", "7", "maj7", "6"}
MIN = {"min", "min7", "min6"}


def majmin(chord) -> tuple[int, str] | None:
    """The MIREX majmin class of a chord (root, maj|min); None for chords of neither class."""
    if chord.is_none:
        return None
    return (chord.root, "maj") if chord.quality in MAJ else (chord.root, "min") if chord.quality in MIN else None


def rendered(song, grid: int):
    """The song's rendered MIDI file, read back with symusic."""
    from symusic import Score

    from mmmgen.render.files import write_midi
    from mmmgen.text.decode import text_to_score

    with tempfile.TemporaryDirectory() as d:
        path = write_midi(text_to_score(song.text, grid, tempo=song.tempo), Path(d) / "piece.mid")
        return Score(str(path))


def measure(score, asked, n_bars: int, grid: int) -> dict:
    """Chord tones on beats and majmin agreement of ``read_chords`` per beat and per bar (4/4)."""
    from mmmgen.generate.harmony import chord_tone_share
    from mmmgen.text.chord_track import chord_at
    from mmmgen.text.harmony import read_chords

    tpq = score.ticks_per_quarter
    notes = [(n.pitch, round(n.start * grid / tpq), round(n.end * grid / tpq)) for t in score.tracks if not t.is_drum for n in t.notes]
    good, total = chord_tone_share(notes, asked, grid)
    read = read_chords(score)
    beats_ok = beats = bars_ok = bars = 0
    for b in range(n_bars):
        agree = []
        for q in range(4 * b, 4 * b + 4):
            want = majmin(chord_at(asked, q))
            if want is not None:
                agree.append(majmin(chord_at(read, q)) == want)
        if agree:
            beats_ok, beats = beats_ok + sum(agree), beats + len(agree)
            bars_ok, bars = bars_ok + (2 * sum(agree) > len(agree)), bars + 1
    return {"on_beat_chord_tones": good, "on_beat_notes": total, "beats_agree": beats_ok, "beats": beats,
            "bars_agree": bars_ok, "bars": bars, "notes": len(notes)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=3)
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--limit", type=int, default=None, help="only the first N progressions")
    parser.add_argument("--rules", default="off,loose,strict")
    parser.add_argument("--instruments", default=None, help="GM programs of the tracks, e.g. 0,48,33 (default: the model's choice)")
    parser.add_argument("--label", default="shipped model")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from mmmgen.generate.progression import load_chords
    from mmmgen.generate.sampling import Sampling
    from mmmgen.generate.song import generate_song
    from mmmgen.model.run import find_run, generator_from_run

    generator, _ = generator_from_run(find_run(None))
    instruments = [(int(p), False) for p in args.instruments.split(",")] if args.instruments else None
    rules = args.rules.split(",")
    columns = [*rules, "block chords"]
    totals = {r: {} for r in columns}
    per_progression = []
    started = time.time()
    for i, (name, text) in enumerate(PROGRESSIONS[: args.limit]):
        row = {"name": name, "progression": text}
        for rule in rules:
            song = generate_song(generator, args.tracks, None, instruments=instruments, n_bars=args.bars, sampling=Sampling(seed=100 + i),
                                 chords=text, chord_rule=rule)
            asked = list(song.chords)
            m = measure(rendered(song, generator.grid), asked, args.bars, generator.grid)
            row[rule] = m
            for key, value in m.items():
                totals[rule][key] = totals[rule].get(key, 0) + value
        row["block chords"] = m = measure(plain(asked, args.bars), asked, args.bars, generator.grid)
        for key, value in m.items():
            totals["block chords"][key] = totals["block chords"].get(key, 0) + value
        per_progression.append(row)
        print(f"{i + 1}: {name}: " + ", ".join(f"{r} {pct(row[r], 'on_beat_chord_tones', 'on_beat_notes')} % tones, "
                                               f"{pct(row[r], 'bars_agree', 'bars')} % bars" for r in rules)
              + f" ({time.time() - started:.0f} s)", file=sys.stderr)
        assert load_chords(text)  # the progression parses as written
    summary = {r: {"chord_tones_on_beats_pct": pct(t, "on_beat_chord_tones", "on_beat_notes"),
                   "read_back_beats_pct": pct(t, "beats_agree", "beats"), "read_back_bars_pct": pct(t, "bars_agree", "bars"), **t}
               for r, t in totals.items()}
    run = {
        "env": _env.environment(("mmmgen", "torch", "transformers", "numpy", "symusic"),
                                machine_note="shared 2-core CPU (other jobs ran alongside); torch threads 1; nice 10"),
        "model": "shipped default (src/mmmgen/resources/default_model), genre the model's choice (by seed), instruments "
                 + (f"GM {args.instruments}" if args.instruments else "the model's choice"),
        "tracks": args.tracks, "bars": args.bars, "progressions": len(per_progression),
        "summary": summary, "per_progression": per_progression, "seconds": round(time.time() - started),
    }
    _env.merge_run(args.results_dir / "chord_gen.json", args.label, run, markdown)
    print((args.results_dir / "chord_gen.md").read_text())
    return 0


def plain(spans, n_bars: int):
    """The progression alone as block chords (``render/chords.py``): what the reader makes of it is
    the ceiling of the read-back measure (chords it cannot tell apart even when played plainly)."""
    from symusic import Score, TimeSignature

    score = Score(480)
    score.time_signatures.append(TimeSignature(0, 4, 4))
    from mmmgen.render.chords import with_block_chords

    return with_block_chords(score, spans)


def pct(d: dict, a: str, b: str) -> float:
    return round(100 * d[a] / d[b], 1) if d.get(b) else 0.0


def markdown(runs: dict) -> str:
    lines = ["# Generation over chord progressions", "",
             "Made by `benchmarks/bench_chord_gen.py` (see its docstring for what is measured). Targets: chord tones on beats",
             ">= 90 % with the loose rule and 100 % with the strict one; the progression read back (majmin) for >= 90 % of bars.", ""]
    for label, run in runs.items():
        env = run["env"]
        lines += [f"## {label}", "", f"{run['progressions']} progressions, {run['tracks']} tracks, {run['bars']} bars; {run['model']}; "
                  f"{run['seconds']} s; {env['date']}, {env['hardware']['cpu']}, load {env['hardware']['load_avg_1_5_15']}, "
                  f"commit {env['git_commit']}.", "",
                  "| chord rule | chord tones on beats | read back: beats | read back: bars | notes |", "|---|---|---|---|---|"]
        for rule, s in run["summary"].items():
            note = {"off": " (baseline: the model alone)", "block chords": " (no model: the progression played plainly; the reader's ceiling)"}.get(rule, "")
            lines.append(f"| {rule}{note} | {s['chord_tones_on_beats_pct']} % "
                         f"({s['on_beat_chord_tones']}/{s['on_beat_notes']}) | {s['read_back_beats_pct']} % | {s['read_back_bars_pct']} % "
                         f"({s['bars_agree']}/{s['bars']}) | {s['notes']} |")
        lines += ["", "| progression | " + " | ".join(f"{r}: tones / bars" for r in run["summary"]) + " |",
                  "|---|" + "---|" * len(run["summary"])]
        for row in run["per_progression"]:
            cells = [f"{pct(row[r], 'on_beat_chord_tones', 'on_beat_notes')} / {pct(row[r], 'bars_agree', 'bars')}" for r in run["summary"]]
            lines.append(f"| {row['name']} (`{row['progression']}`) | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
