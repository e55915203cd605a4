"""Follow the song: do new bars written into real multitrack songs stay in each track's register and drum kit?

Over real multitrack MIDI songs (every file of ``../shared/midi-dev/multitrack`` and a fixed sample
of ``../shared/corpora/lmd-beatles`` drawn by a seeded shuffle), the shipped default model runs,
per song: ``extend`` by 8 bars, and ``infill`` of 2 bars (the middle of the song) of two
different tracks (drawn with the seed among the tracks with notes). Each operation runs with the
song-derived rules (the default) and with ``--free`` (the baseline: same seeds, same run). Per
operation and mode it counts:

* pitched: the share of new pitched notes (NOTE_ON in the new bars) inside their track's own
  range in the song, +/- 2 semitones (target >= 95 %);
* drums: the share of new drum hits on pitches the song's drum track already uses (>= 90 %);
* tempo / names: whether the MIDI written for the result (as ``mmmgen extend`` writes it today)
  keeps the file's first tempo and its track names;
* failures: operations that raised (target: none);
* for ``extend 8``, register and kit also of new bars 1-4 and 5-8 apart: the shipped model's window of 8
  bars writes 4 new bars at a time, the first 4 over the song's own last 4 bars, the next 4 over its own;
* log-likelihood per note of the new bars under the model (``Take.log_likelihood_per_note``);
* the reference, ``the song itself``: each song's own last 8 bars scored the same way against its
  first ``n - 8`` bars (no model): how far real music keeps its register and kit.

Then the key: 20 pieces of 4 tracks generated with ``--scale X`` (X: a seeded draw of major and
minor keys), ``estimate_key`` of each: the share naming X or its relative (target >= 80 %), with
the rules and with ``--free``.

    nice -n 10 .venv/bin/python benchmarks/bench_follow.py                 # ~15 min on a shared 2-core CPU
    nice -n 10 .venv/bin/python benchmarks/bench_follow.py --beatles 4 --pieces 4   # quicker

Results go to ``benchmarks/results/follow.json`` and ``follow.md``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SHARED = _env.ROOT.parent / "shared"
MARGIN = 2
HALVES = {"new bars 1-4": range(4), "new bars 5-8": range(4, 8)}  # the shipped window of 8 bars writes 4 new bars at a time


def song_files(beatles: int, seed: int, held_out: Path | None = None) -> list[Path]:
    """midi-dev's multitrack songs and ``beatles`` lmd-beatles songs; with ``held_out`` (a corpus folder a model
    was prepared from), only that corpus's held-out LMD-BEATLES songs (the split ``mmmgen prepare`` made)."""
    if held_out is not None:
        from mmmgen.model.collections_eval import heldout_sets

        pool = sorted(path for path, _ in heldout_sets([held_out], []).get("LMD-BEATLES", []))
        random.Random(seed).shuffle(pool)
        return pool[:beatles]
    multitrack = sorted((SHARED / "midi-dev" / "multitrack").glob("*.mid"))
    pool = sorted(p for p in (SHARED / "corpora" / "lmd-beatles").rglob("*") if p.suffix.lower() in (".mid", ".midi"))
    random.Random(seed).shuffle(pool)
    return multitrack + pool[:beatles]


def new_notes(before, after, track: int, bars) -> list[int]:
    """NOTE_ON pitches of ``bars`` of track ``track`` in ``after`` (both songs split by ``window.split_song``)."""
    from mmmgen.generate.follow import _note_ons

    return [p for b in bars for p in _note_ons(after[track].bars[b])]


def score_op(before_tracks, after_tracks, changed: dict[int, list[int]]) -> dict:
    """Counts of new pitched notes in register and new drum hits in the kit, over ``changed`` {track: bars}."""
    from mmmgen.generate.follow import song_facts

    facts = song_facts(before_tracks)
    c = {"pitched": 0, "in_register": 0, "drums": 0, "in_kit": 0}
    for k, bars in changed.items():
        f = facts.tracks[k]
        notes = new_notes(before_tracks, after_tracks, k, bars)
        if f.is_drum:
            c["drums"] += len(notes)
            c["in_kit"] += sum(p in f.pitches for p in notes)
        elif f.low is not None:
            c["pitched"] += len(notes)
            c["in_register"] += sum(f.low - MARGIN <= p <= f.high + MARGIN for p in notes)
    return c


def kept(path: Path, song, grid: int) -> tuple[bool, bool]:
    """Whether the MIDI written for ``song`` (as the CLI writes it) keeps the file's first tempo and its track names."""
    from symusic import Score

    from mmmgen.generate.prompt import song_to_score

    source = Score(str(path))
    out = song_to_score(song, grid)  # what write_song (the CLI) writes
    tempo_in = source.tempos[0].qpm if len(source.tempos) else 120.0
    tempo_out = out.tempos[0].qpm if len(out.tempos) else 120.0
    names_in = sorted(t.name for t in source.tracks if t.notes and t.name)
    names_out = sorted(t.name for t in out.tracks if t.name)
    return abs(tempo_in - tempo_out) < 0.5, bool(names_in) and all(n in names_out for n in names_in)


def run_songs(generator, settings, files: list[Path], seed: int, wanted=("follow", "free")) -> dict:
    from mmmgen.generate.follow import Follow
    from mmmgen.generate.prompt import prompt_song
    from mmmgen.generate.sampling import Sampling
    from mmmgen.generate.window import split_song

    modes = {m: f for m, f in {"follow": None, "free": Follow(free=True)}.items() if m in wanted}
    ops = ("extend 8", "infill A", "infill B")
    stats = {m: {o: {"runs": 0, "failed": 0, "pitched": 0, "in_register": 0, "drums": 0, "in_kit": 0, "loglik": 0.0, "loglik_total": 0.0, "notes_total": 0, "words_total": 0, "per_note": [],
                     "tempo_kept": 0, "names_kept": 0, "errors": []} for o in ops} for m in modes}
    skipped, songs = [], []
    real = {"runs": 0, "pitched": 0, "in_register": 0, "drums": 0, "in_kit": 0}  # the songs' own last 8 bars
    for i, path in enumerate(files):
        try:
            song = prompt_song(path, settings)
        except Exception as exc:  # counted: prepare skips such files too
            skipped.append(f"{path.name}: {exc}")
            continue
        _, tracks = split_song(song.text)
        if (counts := song_itself(tracks)) is not None:
            real["runs"] += 1
            for key, value in counts.items():
                real[key] += value
        rng = random.Random(seed + i)
        playing = [k for k, t in enumerate(tracks) if any("NOTE_ON" in w for b in t.bars for w in b)]
        pair = rng.sample(playing, 2) if len(playing) >= 2 else playing * 2
        mid = max(0, song.n_bars // 2 - 1)
        span = [b for b in (mid, mid + 1) if b < song.n_bars]
        songs.append({"file": path.name, "bars": song.n_bars, "tracks": len(tracks), "infill_tracks": [k + 1 for k in pair], "infill_bars": [b + 1 for b in span]})
        for mode, follow in modes.items():
            for op in ops:
                s = stats[mode][op]
                s["runs"] += 1
                sampling = Sampling(seed=seed + i)
                try:
                    if op == "extend 8":
                        take = generator.extend(song, 8, sampling, takes=1, follow=follow)[0]
                        changed = {k: list(range(song.n_bars, song.n_bars + 8)) for k in range(len(tracks))}
                    else:
                        k = pair[0] if op == "infill A" else pair[1]
                        take = generator.infill(song, k, span, sampling, takes=1, follow=follow)[0]
                        changed = {k: span}
                except Exception as exc:  # counted and reported: an operation must not fail
                    s["failed"] += 1
                    s["errors"].append(f"{path.name}: {type(exc).__name__}: {exc}")
                    continue
                after = split_song(take.song.text)[1]
                if op == "extend 8":  # new bars 1-4 / 5-8 (over the song's own recent bars / the model's own); counts: their sum
                    parts = {h: score_op(tracks, after, {k: [song.n_bars + b for b in span] for k in changed}) for h, span in HALVES.items()}
                    counts = {key: sum(p[key] for p in parts.values()) for key in parts[next(iter(HALVES))]}
                    for h, part in parts.items():
                        s[h] = {key: s.get(h, {}).get(key, 0) + value for key, value in part.items()}
                else:
                    counts = score_op(tracks, after, changed)
                for key, value in counts.items():
                    s[key] += value
                s["loglik"] += take.log_likelihood_per_note
                s["per_note"].append(take.log_likelihood_per_note)
                drawn_notes = counts["pitched"] + counts["drums"]  # the NOTE_ONs the take drew (its log-likelihood's divisor)
                s["loglik_total"] += take.log_likelihood_per_note * max(drawn_notes, 1)
                s["notes_total"] += drawn_notes
                s["words_total"] += sum(len(after[k].bars[b]) + 2 for k, bars in changed.items() for b in bars)
                tempo_ok, names_ok = kept(path, take.song, generator.grid)
                s["tempo_kept"] += tempo_ok
                s["names_kept"] += names_ok
        print(f"{i + 1}/{len(files)} {path.name}", file=sys.stderr, flush=True)
    for mode in stats.values():
        for s in mode.values():
            done = s["runs"] - s["failed"]
            for part in [s, *(s[h] for h in HALVES if h in s)]:
                part["register_pct"] = round(100 * part["in_register"] / max(part["pitched"], 1), 1)
                part["kit_pct"] = round(100 * part["in_kit"] / max(part["drums"], 1), 1)
            s["loglik_per_note"] = round(s["loglik"] / max(done, 1), 3)  # mean over runs of each run's per-note figure
            s["loglik_per_note_median"] = round(float(sorted(s["per_note"])[len(s["per_note"]) // 2]), 3) if s["per_note"] else None
            s["loglik_pooled_per_note"] = round(s["loglik_total"] / max(s["notes_total"], 1), 3)  # all runs' log-likelihood / all their notes
            s["loglik_per_word"] = round(s["loglik_total"] / max(s["words_total"], 1), 3)  # ~ words of the new bars (+2 per bar)
            del s["per_note"]
            s["errors"] = s["errors"][:5]
    real["register_pct"] = round(100 * real["in_register"] / max(real["pitched"], 1), 1)
    real["kit_pct"] = round(100 * real["in_kit"] / max(real["drums"], 1), 1)
    return {"songs": songs, "skipped": skipped, "stats": stats, "song_itself": real}


def song_itself(tracks) -> dict | None:
    """The reference no model sampled: a song's own last 8 bars scored against its first ``n - 8`` (songs
    of 16 bars or more; None for shorter), the way ``extend 8`` is scored: how often real music keeps to
    what it played before. A model that continues like the songs do reaches about this, not 100 %."""
    from mmmgen.text.fill import TrackWords

    n_bars = max((len(t.bars) for t in tracks), default=0)
    if n_bars < 16:
        return None
    cut = n_bars - 8
    before = [TrackWords(t.head, t.bars[:cut]) for t in tracks]
    return score_op(before, tracks, {k: list(range(cut, n_bars)) for k in range(len(tracks))})


def relative_ok(asked: str, named: str) -> bool:
    """Whether ``named`` (``estimate_key``) is the key ``asked`` or its relative major/minor."""
    from mmmgen.generate.follow import key_tonic

    t, mode = key_tonic(asked), asked.split(":")[1]
    u, named_mode = key_tonic(named), named.split(":")[1]
    if mode == named_mode:
        return t == u
    return u == ((t + 9) % 12 if mode == "major" else (t + 3) % 12)


def run_keys(generator, pieces: int, seed: int, wanted=("follow", "free")) -> dict:
    from mmmgen.generate.controls import TONICS, Controls, key_of_text
    from mmmgen.generate.follow import Follow
    from mmmgen.generate.sampling import Sampling
    from mmmgen.generate.song import generate_song

    rng = random.Random(seed + 1)  # not the draw the tonal rule was chosen on (seed 0, pieces seeded 0..19)
    keys = [f"{rng.choice(TONICS)}:{rng.choice(('major', 'minor'))}" for _ in range(pieces)]
    out = {}
    for mode, follow in {"follow": None, "free": Follow(free=True)}.items():
        if mode not in wanted or not pieces:
            continue
        rows = []
        for i, key in enumerate(keys):
            song = generate_song(generator, 4, None, n_bars=8, sampling=Sampling(seed=seed + 100 + i), controls=Controls(scale=key), follow=follow)
            named = key_of_text(song.text, generator.grid)
            rows.append({"asked": key, "named": named, "ok": relative_ok(key, named)})
        out[mode] = {"pieces": len(rows), "agree": sum(r["ok"] for r in rows), "agree_pct": round(100 * sum(r["ok"] for r in rows) / max(len(rows), 1), 1), "rows": rows}
        print(f"keys {mode}: {out[mode]['agree']}/{len(rows)}", file=sys.stderr, flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--beatles", type=int, default=20, help="songs drawn from lmd-beatles (seeded shuffle)")
    parser.add_argument("--pieces", type=int, default=20, help="pieces generated with --scale X")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", default="default")
    parser.add_argument("--model", default=None, help="a run folder or a shipped name (default: the shipped default)")
    parser.add_argument("--held-out", type=Path, default=None,
                        help="a corpus folder the model was prepared from: its held-out LMD-BEATLES songs only (no midi-dev songs)")
    parser.add_argument("--modes", default="follow,free", help="follow, free or both (free alone: what the model itself learned)")
    parser.add_argument("--song-heads", action="store_true",
                        help="the baseline of window densities: each window shows every track's head as the song has it "
                             "(its whole-song DENSITY), as mmmgen did before window.window_head")
    parser.add_argument("--machine-note", default="torch threads 1", help="what else ran on the machine (the load is recorded)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    if not (SHARED / "midi-dev" / "multitrack").is_dir():
        print(f"{SHARED} not found: nothing to measure", file=sys.stderr)
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from mmmgen.model.run import find_run, generator_from_run

    generator, settings = generator_from_run(find_run(args.model))
    if args.song_heads:
        generator.density_edges = None
    t0 = time.time()
    files = song_files(args.beatles, args.seed, args.held_out)
    wanted = tuple(args.modes.split(","))
    model = args.model or "shipped default (src/mmmgen/resources/default_model)"
    songs = f"held-out LMD-BEATLES songs of {args.held_out}" if args.held_out else "midi-dev multitrack + lmd-beatles"
    heads = "the song's (--song-heads)" if args.song_heads else "each window's own density (window.window_head)"
    result = {"model": model, "songs_from": songs, "seed": args.seed, "window_heads": heads,
              **run_songs(generator, settings, files, args.seed, wanted)}
    result["keys"] = run_keys(generator, args.pieces, args.seed, wanted)
    result["seconds"] = round(time.time() - t0)
    result["env"] = _env.environment(("mmmgen", "torch", "transformers", "numpy", "symusic"),
                                     machine_note=args.machine_note)
    _env.merge_run(args.results_dir / "follow.json", args.label, result, markdown)
    print((args.results_dir / "follow.md").read_text())
    return 0


def markdown(runs: dict) -> str:
    lines = ["# Follow the song (benchmarks/bench_follow.py)", ""]
    for label, r in runs.items():
        e = r["env"]
        lines += [
            f"## {label}", "",
            f"{len(r['songs'])} songs ({r.get('songs_from', 'midi-dev multitrack + lmd-beatles')}; {len(r['skipped'])} unreadable files skipped, "
            f"as `prepare` skips them), model {r['model']}, seed {r['seed']}"
            + (f"; track heads in a window: {r['window_heads']}." if "window_heads" in r else "."),
            "Each operation with the song-derived rules (follow, the default) and with `--free` (the baseline), same seeds, same run.",
            f"Register: new pitched notes within their track's own range in the song +/- {MARGIN}; kit: new drum hits on pitches the",
            "track already uses; tempo/names: the MIDI written for the result (as the CLI writes it on this branch) keeps the file's",
            "first tempo / all its track names; log-likelihood of the new bars under the model (higher: more typical), per note:",
            "mean and median over runs of each run's figure, and pooled (all runs' log-likelihood over all their notes); per word",
            "(pooled over the words of the new bars, about): a run whose rules keep its tracks (nearly) silent has a huge per-note figure.",
            "",
            f"- date {e['date']}, CPU {e['hardware']['cpu']} ({e['hardware']['logical_cores']} logical cores), {e['hardware'].get('machine_note', '')}",
            f"- load average {e['hardware']['load_avg_1_5_15']}, Python {e['python']}, versions {e['versions']}, git {e['git_commit']}; whole run {r['seconds']} s",
            *([f"- **Note:** {r['note']}"] if r.get("note") else []),
            "",
            "| operation | mode | runs | failed | pitched notes in register | drum hits in kit | tempo kept | names kept | log-lik./note mean | median | pooled | log-lik./word |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for op in ("extend 8", "infill A", "infill B"):
            for mode in r["stats"]:
                s = r["stats"][mode][op]
                lines.append(
                    f"| {op} | {mode} | {s['runs']} | {s['failed']} | {s['in_register']}/{s['pitched']} ({s['register_pct']} %) | "
                    f"{s['in_kit']}/{s['drums']} ({s['kit_pct']} %) | {s['tempo_kept']} | {s['names_kept']} | {s['loglik_per_note']} | "
                    f"{s.get('loglik_per_note_median')} | {s.get('loglik_pooled_per_note')} | {s.get('loglik_per_word')} |"
                )
                lines += [f"| {op}, {h} | {mode} | | | {s[h]['in_register']}/{s[h]['pitched']} ({s[h]['register_pct']} %) | "
                          f"{s[h]['in_kit']}/{s[h]['drums']} ({s[h]['kit_pct']} %) | | | | | | |" for h in HALVES if h in s]
        if (real := r.get("song_itself")) is not None:
            lines.append(f"| extend 8 | the song itself (its own last 8 bars, no model) | {real['runs']} | - | {real['in_register']}/{real['pitched']} "
                         f"({real['register_pct']} %) | {real['in_kit']}/{real['drums']} ({real['kit_pct']} %) | - | - | - | - | - | - |")
        k = r["keys"]
        lines += [] if not k else ["", f"Key: {next(iter(k.values()))['pieces']} pieces of 4 tracks x 8 bars generated with `--scale X`; `estimate_key` names X or its relative:",
                  "", "| mode | agree |", "|---|---|"]
        lines += [f"| {m} | {k[m]['agree']}/{k[m]['pieces']} ({k[m]['agree_pct']} %) |" for m in k]
        errors = [f"- {mode} {op}: {err}" for mode, ops in r["stats"].items() for op, s in ops.items() for err in s["errors"]]
        lines += ["", *(["Failures (first 5 per operation):", *errors] if errors else ["No operation failed."])]
        if r["skipped"]:
            lines += ["", "Skipped files:", *[f"- {s}" for s in r["skipped"]]]
        lines += ["", "Songs: " + "; ".join(f"{s['file']} ({s['bars']} bars, {s['tracks']} tracks, infill tracks {s['infill_tracks']} bars {s['infill_bars']})" for s in r["songs"]), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
