"""Chord reading against real chord annotations: MIREX majmin, root and full-quality accuracy, time per file.

What the reader sees, and what it is compared with (``mmmgen.text.chord_eval.compare_chords``,
duration-weighted over the beats the annotation labels):

* Nottingham (``../shared/corpora/nottingham``): the MIDI file (``midi/NAME.mid``: a ``melody``
  track and a ``chords`` track of piano block chords) against the chord symbols of the tune's ABC
  source (``abc/FILE.abc``, tune ``X: n`` is ``FILEn.mid``) parsed by music21 with repeats expanded.
  Alignment by beats: ABC offsets + the shift that puts the ABC's first melody note on the MIDI's
  first melody note (the MIDI pads a pickup to a full bar); a tune counts only when all its melody
  onsets then agree (the rest are reported as not aligned: mostly tunes whose ABC plays its parts in
  an order, ``P:``/``Y:AABB``, that music21 does not expand while the MIDI does). Inputs: ``melody+chords`` (the
  whole MIDI) and ``melody`` (the melody track alone: the hard case, no target).
* OpenEWLD (``../shared/corpora/openewld``, MusicXML lead sheets): the symbols are the truth; the
  reader sees the melody plus the symbols realised as notes by this script (``block``: bass note in
  octave 2 + chord tones held for the symbol's span; ``comping``: bass on even beats and the chord's
  upper tones, short, on odd beats, an oom-pah), or the ``melody`` alone. Realised accompaniment
  is easier than real accompaniment: the Nottingham numbers are the honest ones.

The baseline in the same run: the same reader at a fixed resolution (one chord per ``bar``, per
``beat``) beside ``auto``. Times are ``read_chords`` alone per file (the loading is not counted),
on whatever load the machine had (recorded).

    nice -n 10 .venv/bin/python benchmarks/bench_chords.py               # 200 tunes + 100 lead sheets
    nice -n 10 .venv/bin/python benchmarks/bench_chords.py --all         # every tune and lead sheet

Results: ``benchmarks/results/chords.json`` and ``chords.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SHARED = _env.ROOT.parent / "shared" / "corpora"
RESOLUTIONS = ("auto", "bar", "beat")


def _tune_numbers(book: Path) -> list[int]:
    return [int(line[2:].strip()) for line in book.read_text(encoding="latin-1").splitlines() if line.startswith("X:")]


def _abc_truth(book: Path, number: int) -> dict | None:
    """One ABC tune's melody onsets and chord symbols (repeats expanded), cached in
    ``~/.cache/mmmgen-bench`` (music21 takes minutes for the 14 books); None if music21 cannot expand it."""
    import json

    from music21 import converter, harmony

    from mmmgen.data.chordfiles import chord_symbols

    cache = Path.home() / ".cache" / "mmmgen-bench" / f"nottingham-v2-{book.stem}-{number}-{book.stat().st_mtime_ns}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    try:
        expanded = converter.parse(book, number=number).expandRepeats()
    except Exception:
        return None
    onsets = sorted({float(n.offset) for n in expanded.flatten().notes if not isinstance(n, harmony.Harmony)})
    truth = {"onsets": onsets, "spans": [[str(s.start), str(s.end), s.chord.label] for s in chord_symbols(expanded)]}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(truth))
    return truth


def nottingham_tunes(limit: int | None):
    """``(midi path, score, truth spans)`` of aligned tunes, plus the count of tunes that were not aligned."""
    from mmmgen.data.prepare import load_score
    from mmmgen.text.chords import ChordSpan, parse_chord

    folder = SHARED / "nottingham"
    books = sorted((folder / "abc").glob("*.abc"))
    tunes, unaligned = [], 0
    for book in books:
        numbers = _tune_numbers(book)
        step = 1 if limit is None else max(len(numbers) * len(books) // limit, 1)
        for number in numbers[::step]:
            midi = folder / "midi" / f"{book.stem}{number}.mid"
            tune = _abc_truth(book, number) if midi.is_file() else None
            if tune is None or not tune["spans"]:
                unaligned += tune is None and midi.is_file()
                continue
            score = load_score(midi)
            melody = next(t for t in score.tracks if t.name == "melody")
            midi_onsets = sorted({float(t) / score.tpq for t in melody.notes.numpy()["time"]})
            shift = Fraction(midi_onsets[0] - tune["onsets"][0]).limit_denominator(96)
            if [round(a + float(shift), 3) for a in tune["onsets"]] != [round(m, 3) for m in midi_onsets]:
                unaligned += 1
                continue
            spans = [ChordSpan(Fraction(a) + shift, Fraction(b) + shift, parse_chord(c)) for a, b, c in tune["spans"]]
            tunes.append((midi, score, spans))
    return tunes, unaligned


def melody_only(score):
    only = score.copy()
    only.tracks = [t for t in only.tracks if t.name == "melody"]
    return only


def realise(score, spans, style: str):
    """``score`` (a lead sheet's melody) plus the chord symbols as notes: ``block`` or ``comping``."""
    from symusic import Note, Track

    out = score.copy()
    track = Track(name="chords", program=0)
    tpq = score.tpq
    for span in spans:
        if span.chord.is_none:
            continue
        bass = 36 + span.chord.bass_class
        upper = sorted(48 + pc for pc in span.chord.pitch_classes)
        if style == "block":
            at, length = round(span.start * tpq), max(round(span.duration * tpq), 1)
            track.notes.extend(Note(at, length, p, 70) for p in [bass, *upper])
            continue
        beat = span.start
        while beat < span.end:
            length = min(Fraction(1), span.end - beat)
            pitches = [bass] if int(beat) % 2 == 0 else upper
            hold = length if int(beat) % 2 == 0 else length / 2
            track.notes.extend(Note(round(beat * tpq), max(round(hold * tpq), 1), p, 70) for p in pitches)
            beat += length
    out.tracks.append(track)
    return out


def ewld_sheets(limit: int | None):
    from mmmgen.data.chordfiles import load_music

    files = sorted((SHARED / "openewld").rglob("*.mxl"))
    if limit is not None and limit < len(files):
        files = [files[round(i * len(files) / limit)] for i in range(limit)]  # evenly spread
    sheets, failed = [], 0
    for path in files:
        try:
            score, spans = load_music(path)
        except Exception:
            failed += 1
            continue
        if spans and len(score.tracks):
            sheets.append((path, score, spans))
        else:
            failed += 1
    return sheets, failed


def evaluate(items, inputs: dict) -> dict:
    """Per input and resolution: the agreement shares and read_chords' time per file (ms)."""
    from mmmgen.text.chord_eval import Agreement, compare_chords
    from mmmgen.text.harmony import read_chords

    out = {}
    for name, make in inputs.items():
        scores = [(make(score, spans), spans) for _, score, spans in items]
        for resolution in RESOLUTIONS:
            total, times = Agreement(), []
            for score, truth in scores:
                start = time.perf_counter()
                estimate = read_chords(score, resolution=resolution)
                times.append(time.perf_counter() - start)
                total = total + compare_chords(truth, estimate)
            out[f"{name} / {resolution}"] = total.shares() | {
                "ms_per_file_median": round(1000 * statistics.median(times), 2),
                "ms_per_file_mean": round(1000 * statistics.fmean(times), 2)}
            print(f"  {name:<22} {resolution:<5} {out[f'{name} / {resolution}']}", flush=True)
    return out


def encoder_times(items) -> dict:
    """The timing baseline in the same run: ``score_to_texts`` (prepare's per-file encoding) and ``read_chords``
    on the same scores, interleaved file by file."""
    from mmmgen.text.encode import score_to_texts
    from mmmgen.text.harmony import read_chords

    times: dict[str, list[float]] = {"score_to_texts": [], "read_chords": []}
    for _, score, _ in items:
        for name, work in (("score_to_texts", score_to_texts), ("read_chords", read_chords)):
            start = time.perf_counter()
            work(score)
            times[name].append(time.perf_counter() - start)
    return {name: {"ms_per_file_median": round(1000 * statistics.median(t), 2), "ms_per_file_mean": round(1000 * statistics.fmean(t), 2)}
            for name, t in times.items()}


def render(runs: dict) -> str:
    lines = ["# Chord reading vs annotations", "",
             "MIREX majmin (root + major/minor class), root and full-quality (root + quality) accuracy, duration-weighted on "
             "the beats the annotation labels; `read_chords` time per file. See `bench_chords.py` for what the reader sees.", ""]
    for label, run in runs.items():
        hw = run["env"]["hardware"]
        lines += [f"## {label}", "", f"{run['env']['date']}, {hw['cpu']} ({hw['logical_cores']} cores, load {hw['load_avg_1_5_15']}), "
                  f"commit {run['env']['git_commit']}. {run['note']}", ""]
        for corpus, result in run["corpora"].items():
            lines += [f"### {corpus}: {result['files']} files ({result['skipped']} skipped: {result['skip_reason']})", "",
                      "| input / resolution | majmin | root | quality | bass | beats | ms/file median | mean |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
            for key, r in result["results"].items():
                lines.append(f"| {key} | {r['majmin']} | {r['root']} | {r['quality']} | {r['bass']} | {r['beats']} | "
                             f"{r['ms_per_file_median']} | {r['ms_per_file_mean']} |")
            lines.append("")
        for corpus, timing in run.get("timing", {}).items():
            lines += [f"### Time per file, {corpus}: `read_chords` beside `score_to_texts` (prepare's encoding), same scores", "",
                      "| function | ms/file median | mean |", "|---|---:|---:|"]
            lines += [f"| `{name}` | {t['ms_per_file_median']} | {t['ms_per_file_mean']} |" for name, t in timing.items()]
            lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tunes", type=int, default=200, help="Nottingham tunes (spread over the ABC books).")
    parser.add_argument("--sheets", type=int, default=100, help="OpenEWLD lead sheets (evenly spread).")
    parser.add_argument("--all", action="store_true", help="Every tune and lead sheet.")
    parser.add_argument("--label", default="cpu", help="Name of this run in the results file.")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    corpora = {}
    tunes, unaligned = nottingham_tunes(None if args.all else args.tunes)
    print(f"nottingham: {len(tunes)} tunes aligned, {unaligned} not", flush=True)
    corpora["Nottingham MIDI vs ABC symbols"] = {
        "files": len(tunes), "skipped": unaligned, "skip_reason": "melody onsets not aligned with the ABC",
        "results": evaluate(tunes, {"melody+chords": lambda s, _: s, "melody": lambda s, _: melody_only(s)})}
    sheets, failed = ewld_sheets(None if args.all else args.sheets)
    print(f"openewld: {len(sheets)} lead sheets, {failed} without symbols or unreadable", flush=True)
    corpora["OpenEWLD melody + realised symbols"] = {
        "files": len(sheets), "skipped": failed, "skip_reason": "unreadable or no chord symbols",
        "results": evaluate(sheets, {"melody+block": lambda s, t: realise(s, t, "block"),
                                     "melody+comping": lambda s, t: realise(s, t, "comping"), "melody": lambda s, _: s})}
    timing = {"Nottingham MIDI": encoder_times(tunes)}
    print(timing, flush=True)
    run = {"env": _env.environment(("symusic", "music21", "numpy")), "corpora": corpora, "timing": timing,
           "note": "Times measured on a shared 2-core machine under load (see load): indicative only."}
    _env.merge_run(RESULTS_DIR / "chords.json", args.label, run, render)
    print((RESULTS_DIR / "chords.md").read_text())


if __name__ == "__main__":
    main()
