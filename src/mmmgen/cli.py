"""The ``mmmgen`` command: one sub-command per pipeline stage, each a thin layer over the library.

Each sub-command parses its typed config (``config.py``) with ``HfArgumentParser`` from flags or
``--config FILE.yaml`` (flags win), calls ONE library function and prints its report. Errors in
the user's input are printed as one line with exit code 2; nothing heavy is imported until a
sub-command runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mmmgen.errors import MMMGenError

log = logging.getLogger("mmmgen")


def _hf_argument_parser():
    """``transformers.HfArgumentParser`` without importing all of ``transformers`` (about 1 s of
    start-up that ``mmmgen prepare`` and ``render`` never need otherwise).

    ``transformers/hf_argparser.py`` imports nothing else from its package, so it loads alone from
    its file; should that change, the ordinary import is used.
    """
    if "transformers" in sys.modules:
        from transformers import HfArgumentParser

        return HfArgumentParser
    import importlib.util

    try:
        origin = importlib.util.find_spec("transformers").origin  # finds, does not import
        spec = importlib.util.spec_from_file_location("mmmgen._hf_argparser", Path(origin).with_name("hf_argparser.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.HfArgumentParser
    except Exception:  # any surprise: the ordinary (slower) import
        from transformers import HfArgumentParser

        return HfArgumentParser


def tidy_help(parser):
    """``--help`` as people read it: each flag once, hyphenated (``--top-k``; ``--top_k`` still parses), and
    "(default: X)" only where the help does not already say what the default is and X means something."""
    import argparse
    import copy

    class Formatter(argparse.ArgumentDefaultsHelpFormatter):
        def _get_help_string(self, action):
            text = action.help or ""
            if any(action.default is v for v in (None, False, argparse.SUPPRESS)) or action.default == [] or "default" in text.lower():
                return text
            return super()._get_help_string(action)

        def _format_action_invocation(self, action):
            shown = copy.copy(action)
            shown.option_strings = [o for o in action.option_strings if "_" not in o or o.replace("_", "-") not in action.option_strings]
            return super()._format_action_invocation(shown)

    for action in parser._actions:  # the usage line shows the first spelling: the hyphenated one
        action.option_strings.sort(key=lambda o: "_" in o)
        if action.option_strings and all(o.startswith("--no") for o in action.option_strings) and action.const is False:
            action.help = f"Turn --{action.dest.replace('_', '-')} off."  # HfArgumentParser's --no-X twin of a bool flag
    parser.formatter_class = Formatter
    return parser


def parse_config(
    argv: Sequence[str],
    types: Sequence[type],
    prog: str,
    description: str,
    positionals: Sequence[tuple[str, str]] = (),
    extra: Callable | None = None,
):
    """Parse flags (and an optional ``--config`` YAML) into instances of ``types``.

    Returns ``(configs, namespace)`` where the namespace holds positionals and ``extra`` options.
    """
    import yaml

    parser = tidy_help(_hf_argument_parser()(list(types), prog=prog, description=description))
    for name, help_text in positionals:
        parser.add_argument(name, help=help_text)
    parser.add_argument("--config", default=None, help="YAML file of settings; explicit flags override it.")
    if extra:
        extra(parser)
    ns = parser.parse_args(argv)
    if ns.config:
        values = yaml.safe_load(Path(ns.config).read_text()) or {}
        known = {f.name for t in types for f in dataclasses.fields(t)}
        unknown = sorted(set(values) - known)
        if unknown:
            parser.error(f"{ns.config}: unknown keys {unknown}")
        parser.set_defaults(**values)
        ns = parser.parse_args(argv)
    configs = []
    for t in types:
        names = {f.name for f in dataclasses.fields(t) if f.init}
        try:
            configs.append(t(**{k: v for k, v in vars(ns).items() if k in names}))
        except (ValueError, TypeError) as exc:
            parser.error(str(exc))
    rest = {k: v for k, v in vars(ns).items() if not any(k in {f.name for f in dataclasses.fields(t)} for t in types)}
    return configs, rest


def cmd_corpus(argv: Sequence[str]) -> int:
    from mmmgen.data import corpus

    def extra(p):
        p.add_argument("--collections", default=None, help=f"Comma-separated subset of {','.join(corpus.COLLECTIONS)} (all: these, the default) "
                       "and of the open collections groove, lmd-beatles, openewld (open: these three) and nottingham (GPL-3.0: not for shipped weights).")
        p.add_argument("--from", dest="from_dir", default=None, help="Folder with local copies of the open collections (groove/, lmd-beatles/, ...); "
                       "without it they are downloaded (pinned commit, checked against a SHA-256).")
        p.add_argument("--cache", default=None, help="Download folder of the open collections (default: OUT_DIR/.downloads).")
        p.add_argument("--allow-unpinned", action="store_true", help="Accept a download of a collection that has no pinned checksum (nottingham).")
        p.add_argument("--num-proc", type=int, default=None, help="Worker processes (default: all cores).")
        p.add_argument("--limit", type=int, default=None, help="At most this many works per collection, the first ones (smoke runs).")
        p.add_argument("--sample", type=int, default=None,
                       help="At most this many works per collection, evenly spread over it (a smaller corpus that still covers every source).")

    _, ns = parse_config(
        argv, [], "mmmgen corpus", "Export music21's public-domain corpus and open collections to MIDI + genres.csv (the default model's data).",
        [("out_dir", "Output folder (one sub-folder per collection, plus genres.csv).")], extra,
    )
    names = ns["collections"].split(",") if ns["collections"] else None
    report = corpus.export_corpus(ns["out_dir"], names, num_proc=ns["num_proc"], limit=ns["limit"], sample=ns["sample"],
                                  from_dir=ns["from_dir"], cache=ns["cache"], allow_unpinned=ns["allow_unpinned"])
    print(report.summary() if hasattr(report, "summary") else report)
    return 0


def cmd_prepare(argv: Sequence[str]) -> int:
    from mmmgen.config import PrepareConfig
    from mmmgen.data.prepare import format_report, prepare

    (config,), ns = parse_config(
        argv, [PrepareConfig], "mmmgen prepare",
        "Cut every MIDI file of a folder into N-bar windows of MMM text; save a Hugging Face dataset + report.json.",
        [("midi_dir", "Folder of MIDI files (searched recursively)."), ("out_dir", "Output dataset folder.")],
    )
    report = prepare(ns["midi_dir"], ns["out_dir"], config)
    print(format_report(report))
    print(f"dataset written to {ns['out_dir']}")
    return 0


def cmd_render(argv: Sequence[str]) -> int:
    from mmmgen.render.files import FORMATS, SOUNDFONT_ENV, SYNTHS, render_file

    def extra(p):
        p.add_argument("--out", required=True, help="Output folder: <stem>.<fmt> for a MIDI file or a text of one piece (piece.txt -> piece.mid, ...); 0000.<fmt>, 0001.<fmt>, ... for a text of several, one per line.")
        p.add_argument("--format", default="mid", help=f"Comma-separated output formats, e.g. mid,wav,png (from {','.join(FORMATS)}; mp3/ogg need ffmpeg).")
        p.add_argument("--tempo", type=float, default=None, help="Tempo in BPM; unset, text plays at its BPM= or 120 and a MIDI file at its own tempo.")
        p.add_argument("--grid", type=int, default=12, help="Grid steps per quarter of the text.")
        p.add_argument("--soundfont", default=None, help=f"General MIDI .sf2 for audio; unset: ${SOUNDFONT_ENV}, else fluid-soundfont-gm's FluidR3_GM.sf2, else pretty_midi's TimGM6mb.sf2.")
        p.add_argument("--synth", choices=SYNTHS, default="auto", help="Audio synthesizer; auto: FluidSynth when installed, else the built-in numpy SoundFont player.")
        p.add_argument("--sample-rate", type=int, default=44100, help="Audio sample rate in Hz.")

    _, ns = parse_config(
        argv, [], "mmmgen render", "Render MMM text (one piece per line) or a MIDI file to MIDI, audio (wav/mp3/ogg) and piano-roll pictures (png).",
        [("input", "Text file with one MMM piece per line (the tutorial's token_sequences_*.txt work), or a MIDI file.")], extra,
    )
    written = render_file(
        ns["input"], ns["out"], ns["format"], tempo=ns["tempo"], grid=ns["grid"],
        soundfont=ns["soundfont"], synth=ns["synth"], sample_rate=ns["sample_rate"],
    )
    kinds = sorted({p.suffix.lstrip(".") for p in written})
    print(f"wrote {len(written)} files ({', '.join(kinds) or 'none'}) to {ns['out']}")
    return 0


def cmd_chords(argv: Sequence[str]) -> int:
    from mmmgen.data.chordfiles import chords_report

    def extra(p):
        p.add_argument("--out", default=None, help="Write the chords as CSV (start_beat,end_beat,start_s,end_s,chord) here.")
        p.add_argument("--resolution", choices=("auto", "bar", "half", "beat"), default="auto", help="Finest chord segment (auto: what the harmony changes on).")
        p.add_argument("--symbols", action="store_true", help="Print the file's own chord symbols (MusicXML <harmony>, ABC \"Am\") instead of reading the notes.")

    _, ns = parse_config(argv, [], "mmmgen chords", "Read the chords of a MIDI file, a score (MusicXML, ABC) or MMM text: a line per bar, and a CSV.",
                         [("file", "MIDI, MusicXML/ABC (read by music21) or MMM text (its first piece).")], extra)
    text, table = chords_report(ns["file"], symbols=ns["symbols"], resolution=ns["resolution"])
    print(text)
    if ns["out"]:
        Path(ns["out"]).write_text(table, encoding="utf-8")
        print(f"chords written to {ns['out']}")
    return 0


def cmd_genres(argv: Sequence[str]) -> int:
    from mmmgen.data import genres, spotify

    def extra(p):
        p.add_argument("--out", required=True, help="Output CSV path,genre (paths relative to MIDI_DIR) for `mmmgen prepare --genres`.")
        p.add_argument("--artist-csv", default=None, help="Artist -> genre CSV: the tutorial's Artist,Genre_ChatGPT,Formatted_Artist or plain artist,genre.")
        p.add_argument("--from-folders", choices=genres.FOLDER_MODES, default=None, help="The parent folder names the artist (looked up; the default with --artist-csv/--spotify) or the genre itself.")
        p.add_argument("--spotify", action="store_true", help="Look artists missing from --artist-csv up on Spotify (top hit's genres); needs SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET.")
        p.add_argument("--group", default=None, help="Genre map YAML (fine -> coarse genres); 'default' = the built-in map (the default with --spotify), 'none' keeps fine genres.")
        p.add_argument("--min-count", type=int, default=0, help="Merge genres with fewer files into OTHER.")
        p.add_argument("--cache", default=None, help="JSON cache of Spotify answers (default: next to --out); a rerun asks only for what is missing.")

    _, ns = parse_config(
        argv, [], "mmmgen genres", "Label a MIDI collection (Lakh MIDI Clean Artist/Title.mid) with genres; print a balance report.",
        [("midi_dir", "Folder of MIDI files (Artist/Title.mid, or Genre/... with --from-folders genre).")], extra,
    )
    client = spotify.SpotifyClient.from_env() if ns["spotify"] else None
    report = genres.label_collection(
        ns["midi_dir"], ns["out"], artist_csv=ns["artist_csv"], from_folders=ns["from_folders"], spotify=client,
        group=ns["group"], min_count=ns["min_count"], cache=ns["cache"],
    )
    print(report.summary())
    return 0


def cmd_tokenizer(argv: Sequence[str]) -> int:
    from mmmgen.config import TokenizerConfig
    from mmmgen.model.tokenizer import format_summary, train_tokenizer

    (config,), ns = parse_config(
        argv, [TokenizerConfig], "mmmgen tokenizer",
        "Train a WordLevel tokenizer (whitespace words) on a dataset's train split; its vocabulary is the dataset's whole grammar.",
        [("dataset_dir", "Prepared dataset folder (mmmgen prepare)."), ("out_dir", "Output tokenizer folder.")],
    )
    tokenizer = train_tokenizer(ns["dataset_dir"], ns["out_dir"], batch_size=config.batch_size)
    print(format_summary(tokenizer, ns["out_dir"]))
    return 0


def cmd_train(argv: Sequence[str]) -> int:
    import os

    from mmmgen.config import TrainConfig
    from mmmgen.model.train import format_summary, train

    (config,), _ = parse_config(
        argv, [TrainConfig], "mmmgen train",
        "Train a GPT-2 from scratch on a prepared dataset (HF Trainer; no compute on padding, see --batching; checkpoints; --resume), "
        "or fine-tune a trained one with --init-from (default: the shipped model).",
    )
    run = train(config)
    if int(os.environ.get("RANK", "0")) == 0:
        print(format_summary(run))
    return 0


def cmd_size(argv: Sequence[str]) -> int:
    from mmmgen.config import SizeConfig
    from mmmgen.model.sizing import format_size_report, size_report

    (config,), _ = parse_config(
        argv, [SizeConfig], "mmmgen size",
        "Count a dataset's tokens; print the Chinchilla compute-optimal model size, steps and the preset that fits.",
    )
    print(format_size_report(size_report(config.dataset, config.tokens_per_param, config.epochs, config.batch_tokens)))
    return 0


def cmd_generate(argv: Sequence[str]) -> int:
    from mmmgen.config import (
        ChordsConfig,
        ControlsConfig,
        FollowConfig,
        GenerateConfig,
        TakesConfig,
    )
    from mmmgen.generate.prompt import prompt_song
    from mmmgen.generate.sampling import Sampling
    from mmmgen.generate.song import generate_song
    from mmmgen.model.run import find_run, generator_from_run
    from mmmgen.render.gm import program_from_name
    from mmmgen.text import vocab as V

    (c, takes, k, h, f), _ = parse_config(argv, [GenerateConfig, TakesConfig, ControlsConfig, ChordsConfig, FollowConfig], "mmmgen generate",
                                       "Generate a multitrack piece one instrument at a time (over a chord progression with --chords).")
    controls = controls_from(k)  # bad controls fail before the model loads
    meter = V.parse_time_signature(c.time_signature)
    if meter is None:
        print(f"mmmgen generate: error: bad --time-signature {c.time_signature!r} (e.g. 4_4, 6_8)", file=sys.stderr)
        return 2
    harmony = chords_from(h, meter)
    try:
        instruments = [program_from_name(name) for name in c.instrument]
    except ValueError as exc:
        print(f"mmmgen generate: error: {exc}", file=sys.stderr)
        return 2
    generator, settings = generator_from_run(find_run(c.model))
    bars = c.bars or settings.get("codec", {}).get("bars", 8)
    prompt = prompt_song(c.prompt, settings, c.tempo) if c.prompt else None
    sampling = Sampling(c.temperature, c.top_k, c.top_p, c.seed)
    with bars_progress(c.tracks * (prompt.n_bars if prompt else bars) * (takes.takes or 1)):
        made = generate_song(generator, c.tracks, c.genre, instruments, c.density, bars, meter, c.tempo or 120.0, sampling, prompt,
                             takes=takes.takes, controls=controls, follow=follow_from(f), **harmony)
    if takes.takes is not None:
        return write_takes(made, generator.grid, Path(c.out), c.format, takes.rank)
    written = write_song(made, generator.grid, Path(c.out) / "piece", c.format)
    print(f"{len(made.tracks)} tracks, {made.n_bars} bars, genre {made.genre}; wrote " + ", ".join(str(p) for p in written))
    return 0


def cmd_infill(argv: Sequence[str]) -> int:
    from mmmgen.config import ChordsConfig, ControlsConfig, FollowConfig, InfillConfig, TakesConfig
    from mmmgen.generate.prompt import prompt_song
    from mmmgen.generate.sampling import Sampling
    from mmmgen.model.run import find_run, generator_from_run

    def extra(p):
        p.add_argument("piece", nargs="?", default=None, help="The piece (MMM text or a MIDI file), as --input.")

    (c, takes, k, h, f), ns = parse_config(
        argv, [InfillConfig, TakesConfig, ControlsConfig, ChordsConfig, FollowConfig], "mmmgen infill",
        "Regenerate chosen bars of one track (MMM bar-fill); every other bar stays as it was; the new bars follow the piece's chords (or --chords).",
        extra=extra,
    )
    if bool(ns["piece"]) == bool(c.input):
        print("mmmgen infill: error: give the piece once: as the first argument or as --input", file=sys.stderr)
        return 2
    controls = controls_from(k)
    harmony = chords_from(h)
    generator, settings = generator_from_run(find_run(c.model))
    song = prompt_song(c.input or ns["piece"], settings, c.tempo)
    bars = c.bar_range()
    sampling = Sampling(c.temperature, c.top_k, c.top_p, c.seed)
    with bars_progress(len(bars or range(song.n_bars)) * (takes.takes or 1)):
        made = generator.infill(song, c.track - 1, bars, sampling, takes=takes.takes, controls=controls, follow=follow_from(f), **harmony)
    if takes.takes is not None:
        return write_takes(made, generator.grid, Path(c.out), c.format, takes.rank)
    written = write_song(made, generator.grid, Path(c.out) / "piece", c.format)
    print(f"track {c.track}, bars {c.bars} regenerated; wrote " + ", ".join(str(p) for p in written))
    return 0


def cmd_extend(argv: Sequence[str]) -> int:
    from mmmgen.config import ChordsConfig, ControlsConfig, ExtendConfig, FollowConfig, TakesConfig
    from mmmgen.generate.prompt import prompt_song
    from mmmgen.generate.sampling import Sampling
    from mmmgen.generate.song import MAX_BARS
    from mmmgen.model.run import find_run, generator_from_run

    (c, t, k, h, f), ns = parse_config(
        argv, [ExtendConfig, TakesConfig, ControlsConfig, ChordsConfig, FollowConfig], "mmmgen extend",
        f"Continue a piece: every track gets --bars more bars, window by window; its bars (up to {MAX_BARS}) stay as they are.",
        [("input", f"The piece: MMM text (first line; e.g. a piece.txt from generate) or a MIDI file (all its bars, up to {MAX_BARS}).")],
    )
    harmony = chords_from(h)
    generator, settings = generator_from_run(find_run(c.model))
    song = prompt_song(ns["input"], settings, c.tempo)
    before, bars = song.n_bars, c.bars or generator.window
    sampling = Sampling(c.temperature, c.top_k, c.top_p, c.seed)
    with bars_progress(bars * len(song.tracks) * (t.takes or 1)):
        made = generator.extend(song, bars, sampling, takes=t.takes, controls=controls_from(k), follow=follow_from(f), **harmony)
    if t.takes is not None:
        return write_takes(made, generator.grid, Path(c.out), c.format, t.rank)
    written = write_song(made, generator.grid, Path(c.out) / "piece", c.format)
    print(f"{len(made.tracks)} tracks, {before} + {made.n_bars - before} = {made.n_bars} bars; wrote " + ", ".join(str(p) for p in written))
    return 0


@contextlib.contextmanager
def bars_progress(total: int):
    """On a terminal, a progress bar of the bars written (one track's bar each) while the block runs;
    elsewhere (a pipe, a log file) nothing."""
    from mmmgen.generate.sampling import on_progress

    if not sys.stderr.isatty():
        yield
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc="writing", unit="bar", file=sys.stderr, leave=False, mininterval=0, miniters=1) as bar, on_progress(bar.update):
        yield


def write_song(song, grid: int, out_stem: Path, formats: str) -> list[Path]:
    """``out_stem.<fmt>`` of a song (``song_to_score``: the tempo, names and kits of a MIDI file it came from)."""
    from mmmgen.generate.prompt import song_to_score
    from mmmgen.render.files import render_score

    return render_score(song_to_score(song, grid), out_stem, formats, text=song.text)


def controls_from(k):
    """The ``Controls`` of the ``--scale``/``--pitch-range``/... flags (None when none is set)."""
    from mmmgen.generate.controls import Controls, parse_pitch_range

    if all(v is None for v in (k.scale, k.pitch_range, k.max_polyphony, k.min_note, k.max_note)):
        return None
    pitch_range = parse_pitch_range(k.pitch_range) if k.pitch_range else None
    return Controls(k.scale, pitch_range, k.max_polyphony, k.min_note, k.max_note)


def chords_from(h, meter: tuple[int, int] = (4, 4)) -> dict:
    """``chords=``/``chord_rule=`` of ``--chords``/``--chord-rule``; bad chords fail here, before the model loads."""
    from mmmgen.generate.progression import load_chords

    if h.chords is not None:
        load_chords(h.chords, meter)
    return {"chords": h.chords, "chord_rule": h.chord_rule}


def cmd_harmonize(argv: Sequence[str]) -> int:
    from mmmgen.config import ChordsConfig, ControlsConfig, HarmonizeConfig
    from mmmgen.generate.harmonize import harmonize
    from mmmgen.generate.progression import chord_line
    from mmmgen.generate.prompt import prompt_song
    from mmmgen.generate.sampling import Sampling
    from mmmgen.model.run import find_run, generator_from_run
    from mmmgen.render.gm import program_from_name

    (c, k, h), ns = parse_config(
        argv, [HarmonizeConfig, ControlsConfig, ChordsConfig], "mmmgen harmonize",
        "Accompany a melody: read its chords (or take --chords) and add --tracks tracks that follow them.",
        [("melody", "The melody: a MIDI file or MMM text (all its tracks are kept).")],
    )
    controls, harmony = controls_from(k), chords_from(h)
    try:
        instruments = [program_from_name(name) for name in c.instrument]
    except ValueError as exc:
        print(f"mmmgen harmonize: error: {exc}", file=sys.stderr)
        return 2
    generator, settings = generator_from_run(find_run(c.model))
    melody = prompt_song(ns["melody"], settings, c.tempo)
    sampling = Sampling(c.temperature, c.top_k, c.top_p, c.seed)
    song = harmonize(generator, melody, c.tracks, instruments=instruments, sampling=sampling, controls=controls, **harmony)
    written = write_song(song, generator.grid, Path(c.out) / "piece", c.format)
    print(f"chords: {chord_line(song)}\n{len(song.tracks)} tracks, {song.n_bars} bars; wrote " + ", ".join(str(p) for p in written))
    return 0


def follow_from(f):
    """The ``Follow`` of the ``--free``/``--register-margin``/``--whole-kit`` flags."""
    from mmmgen.generate.follow import Follow

    return Follow(free=f.free, register_margin=None if f.register_margin < 0 else f.register_margin, whole_kit=f.whole_kit)


def write_takes(takes: list, grid: int, out: Path, formats: str, rank: bool) -> int:
    """Write ``out/take-K/piece.*`` for each take (best first with ``rank``) and ``out/takes.csv``; print a line each."""
    import csv

    from mmmgen.generate.song import rank_takes

    ordered = rank_takes(takes) if rank else list(takes)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "takes.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["take", "seed", "log_likelihood_per_note", "genre"])
        for k, take in enumerate(ordered, 1):
            song = take.song
            written = write_song(song, grid, out / f"take-{k}" / "piece", formats)
            writer.writerow([k, take.seed, f"{take.log_likelihood_per_note:.6f}", song.genre])
            print(f"take {k}: seed {take.seed}, log-likelihood per note {take.log_likelihood_per_note:.3f}, "
                  f"{len(song.tracks)} tracks, {song.n_bars} bars, genre {song.genre}; wrote " + ", ".join(str(p) for p in written))
    print(f"wrote {out / 'takes.csv'}" + (" (takes ranked best first)" if rank else ""))
    return 0


def cmd_evaluate(argv: Sequence[str]) -> int:
    from mmmgen.config import EvaluateConfig
    from mmmgen.model.evaluate import evaluate, format_table

    (c,), _ = parse_config(
        argv, [EvaluateConfig], "mmmgen evaluate",
        "Score a trained model: loss per token and per note on held-out windows (--dataset test split or --midi folder), "
        "validity of generated tracks, and musical statistics against the reference (overlapping areas, Yang & Lerch 2018).",
    )
    results = evaluate(c)
    print(format_table(results))
    if c.out:
        print(f"results written to {c.out}")
    if c.write_card:
        print(f"model card updated: {Path(results['model']) / 'README.md'} (and evaluation.json)")
    return 0


def cmd_sweep(argv: Sequence[str]) -> int:
    import argparse

    from transformers import HfArgumentParser

    from mmmgen.config import SweepConfig, TrainConfig
    from mmmgen.model.sweep import format_summary, load_sweep, run_sweep

    parser = HfArgumentParser(
        [SweepConfig, TrainConfig], prog="mmmgen sweep",
        description="Search training settings with a W&B sweep YAML, offline (Optuna) and resumable; "
        "every `mmmgen train` flag given here is held fixed and wins over the file.",
    )
    parser.add_argument("sweep_file", help="W&B sweep YAML: method, metric, parameters; fixed settings under train:.")
    tidy_help(parser)
    train_names = [f.name for f in dataclasses.fields(TrainConfig)]
    for action in parser._actions:  # only the training flags actually given reach the namespace
        if action.dest in train_names:
            action.default = argparse.SUPPRESS
    ns = vars(parser.parse_args(argv))
    fixed = {k: ns.pop(k) for k in train_names if k in ns}
    try:
        config = SweepConfig(**{f.name: ns[f.name] for f in dataclasses.fields(SweepConfig)})
    except ValueError as exc:
        parser.error(str(exc))
    result = run_sweep(load_sweep(ns["sweep_file"], fixed), config)
    print(format_summary(result))
    return 0 if result.best is not None or config.backend == "wandb" else 1


def cmd_app(argv: Sequence[str]) -> int:
    from mmmgen.app import AppSettings, build_app, serve
    from mmmgen.config import AppConfig
    from mmmgen.model.run import find_run, generator_from_run

    (c,), _ = parse_config(argv, [AppConfig], "mmmgen app", "Start the web app (Gradio) on a trained model.")
    run = find_run(c.model)
    generator, settings = generator_from_run(run)
    codec = settings.get("codec", {})
    app_settings = AppSettings(
        bars=codec.get("bars", 8), grid=codec.get("grid", 12), density_levels=codec.get("density_levels", 10),
        density_edges=settings.get("density_edges", []), genres=generator.genres, concurrency=c.concurrency, queue_size=c.queue_size,
        cache_minutes=c.cache_minutes, load=c.load,
    )
    demo = build_app(generator, app_settings)  # a bad --load fails here, before serving
    print(f"model: {run}\n" + (f"piece: {c.load}\n" if c.load else "") + f"open http://{c.host}:{c.port}/ in a browser (Ctrl+C stops)")
    serve(demo, c.host, c.port, block=True)
    return 0


def cmd_space(argv: Sequence[str]) -> int:
    from mmmgen.config import SpaceConfig
    from mmmgen.model.space import export_space

    (c,), ns = parse_config(
        argv, [SpaceConfig], "mmmgen space",
        "Write a folder that runs as a Hugging Face Space (Gradio) or a Docker image: app.py, requirements.txt, "
        "packages.txt, README.md (front matter + model card), Dockerfile, the model and mmmgen's source.",
        positionals=[("run", "Run folder of a trained model; default: the model shipped with mmmgen; latest: the newest under runs/."),
                     ("out", "Folder to write (new, empty, or an earlier `mmmgen space` folder, which is replaced).")],
    )
    out = export_space(ns["run"], ns["out"], c)
    print(f"Space written to {out}\n  try it:  python {out / 'app.py'}   (then open http://localhost:7860/)\n"
          f"  push it: see {out / 'README.md'} (hf upload USER/SPACE {out} . --repo-type space)")
    return 0


COMMANDS: dict[str, tuple[Callable[[Sequence[str]], int], str]] = {
    "corpus": (cmd_corpus, "export the embedded music21 corpus to MIDI + genres.csv"),
    "genres": (cmd_genres, "label a MIDI collection with genres (artist CSV, folders, Spotify) -> path,genre CSV"),
    "prepare": (cmd_prepare, "MIDI folder -> N-bar MMM text windows (HF dataset)"),
    "tokenizer": (cmd_tokenizer, "dataset -> WordLevel tokenizer over the whole grammar"),
    "size": (cmd_size, "dataset -> token count, compute-optimal model size, fitting preset"),
    "train": (cmd_train, "dataset + tokenizer -> GPT-2 run folder (checkpoints, samples, model card)"),
    "sweep": (cmd_sweep, "search training settings (W&B sweep YAML) offline with Optuna -> results.csv, best.yaml"),
    "generate": (cmd_generate, "trained run -> a new piece, one instrument at a time (MIDI, audio, picture, text)"),
    "infill": (cmd_infill, "regenerate chosen bars of any track of a piece (MMM bar-fill)"),
    "extend": (cmd_extend, "continue a piece (MMM text or your MIDI): more bars on every track"),
    "harmonize": (cmd_harmonize, "accompany a melody: read its chords, add tracks that follow them"),
    "chords": (cmd_chords, "read the chords of a MIDI file, MusicXML or MMM text: a line per bar, CSV"),
    "render": (cmd_render, "MMM text or MIDI -> MIDI, audio (FluidSynth), piano roll"),
    "evaluate": (cmd_evaluate, "trained run -> loss per note, validity, musical statistics vs reference (JSON, model card)"),
    "app": (cmd_app, "the web app: build a piece instrument by instrument in the browser"),
    "space": (cmd_space, "trained run -> a folder that runs as a Hugging Face Space or a Docker image"),
}


def usage() -> str:
    lines = ["usage: mmmgen <command> [options]   (mmmgen <command> --help for its options)", "", "commands (in pipeline order):"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"mmmgen: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    try:
        return COMMANDS[name][0](rest)
    except (MMMGenError, FileNotFoundError, NotADirectoryError) as exc:
        print(f"mmmgen {name}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # argparse usage errors and --help: return the code, don't exit the caller
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    except KeyboardInterrupt:
        print(f"mmmgen {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
