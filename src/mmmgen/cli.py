"""The ``mmmgen`` command: one sub-command per pipeline stage, each a thin layer over the library.

Each sub-command parses its typed config (``config.py``) with ``HfArgumentParser`` from flags or
``--config FILE.yaml`` (flags win), calls ONE library function and prints its report. Errors in
the user's input are printed as one line with exit code 2; nothing heavy is imported until a
sub-command runs.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mmmgen.config.threads import apply_threads, early_setup
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

    parser = _hf_argument_parser()(list(types), prog=prog, description=description)
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
        p.add_argument("--collections", default=None, help=f"Comma-separated subset of {','.join(corpus.COLLECTIONS)}, or all (the default).")
        p.add_argument("--num-proc", type=int, default=None, help="Worker processes (default: all cores).")
        p.add_argument("--limit", type=int, default=None, help="At most this many works per collection, the first ones (smoke runs).")
        p.add_argument("--sample", type=int, default=None,
                       help="At most this many works per collection, evenly spread over it (a smaller corpus that still covers every source).")

    _, ns = parse_config(
        argv, [], "mmmgen corpus", "Export music21's public-domain corpus to MIDI + genres.csv (the embedded default dataset).",
        [("out_dir", "Output folder (one sub-folder per collection, plus genres.csv).")], extra,
    )
    names = ns["collections"].split(",") if ns["collections"] and ns["collections"].lower() != "all" else None
    report = corpus.export_corpus(ns["out_dir"], names, num_proc=ns["num_proc"], limit=ns["limit"], sample=ns["sample"])
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
        p.add_argument("--out", required=True, help="Output folder (0000.mid, 0000.wav, ... per text line; <stem>.<fmt> for a MIDI file).")
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
    from mmmgen.config import ControlsConfig, GenerateConfig, TakesConfig
    from mmmgen.generate.prompt import prompt_song
    from mmmgen.generate.sampling import Sampling
    from mmmgen.generate.song import generate_song
    from mmmgen.model.run import find_run, generator_from_run
    from mmmgen.render.files import render_score
    from mmmgen.render.gm import program_from_name
    from mmmgen.text import vocab as V

    (c, takes, k), _ = parse_config(argv, [GenerateConfig, TakesConfig, ControlsConfig], "mmmgen generate", "Generate a multitrack piece one instrument at a time.")
    apply_threads(say=log.info)  # the cores others leave free (a training run beside it keeps its share)
    controls = controls_from(k)  # bad controls fail before the model loads
    meter = V.parse_time_signature(c.time_signature)
    if meter is None:
        print(f"mmmgen generate: error: bad --time-signature {c.time_signature!r} (e.g. 4_4, 6_8)", file=sys.stderr)
        return 2
    try:
        instruments = [program_from_name(name) for name in c.instrument]
    except ValueError as exc:
        print(f"mmmgen generate: error: {exc}", file=sys.stderr)
        return 2
    generator, settings = generator_from_run(find_run(c.model))
    bars = c.bars or settings.get("codec", {}).get("bars", 8)
    prompt = prompt_song(c.prompt, settings, c.tempo) if c.prompt else None
    sampling = Sampling(c.temperature, c.top_k, c.top_p, c.seed)
    if takes.takes is not None:
        made = generate_song(generator, c.tracks, c.genre, instruments, c.density, bars, meter, c.tempo, sampling, prompt, takes=takes.takes, controls=controls)
        return write_takes(made, generator.grid, Path(c.out), c.format, takes.rank)
    song = generate_song(generator, c.tracks, c.genre, instruments, c.density, bars, meter, c.tempo, sampling, prompt, controls=controls)
    from mmmgen.text.decode import text_to_score

    score = text_to_score(song.text, generator.grid, tempo=song.tempo)
    written = render_score(score, Path(c.out) / "piece", c.format, text=song.text)
    print(f"{len(song.tracks)} tracks, {song.n_bars} bars, genre {song.genre}; wrote " + ", ".join(str(p) for p in written))
    return 0


def cmd_infill(argv: Sequence[str]) -> int:
    from mmmgen.config import ControlsConfig, InfillConfig, TakesConfig
    from mmmgen.generate.prompt import prompt_song
    from mmmgen.generate.sampling import Sampling
    from mmmgen.model.run import find_run, generator_from_run
    from mmmgen.render.files import render_score
    from mmmgen.text.decode import text_to_score

    (c, takes, k), _ = parse_config(
        argv, [InfillConfig, TakesConfig, ControlsConfig], "mmmgen infill", "Regenerate chosen bars of one track (MMM bar-fill); every other bar stays as it was."
    )
    controls = controls_from(k)
    generator, settings = generator_from_run(find_run(c.model))
    song = prompt_song(c.input, settings, c.tempo)
    if takes.takes is not None:
        sampling = Sampling(c.temperature, c.top_k, c.top_p, c.seed)
        made = generator.infill(song, c.track - 1, c.bar_range(), sampling, takes=takes.takes, controls=controls)
        return write_takes(made, generator.grid, Path(c.out), c.format, takes.rank)
    song = generator.infill(song, c.track - 1, c.bar_range(), Sampling(c.temperature, c.top_k, c.top_p, c.seed), controls=controls)
    score = text_to_score(song.text, generator.grid, tempo=song.tempo)
    written = render_score(score, Path(c.out) / "piece", c.format, text=song.text)
    print(f"track {c.track}, bars {c.bars} regenerated; wrote " + ", ".join(str(p) for p in written))
    return 0


def cmd_extend(argv: Sequence[str]) -> int:
    from mmmgen.config import ControlsConfig, ExtendConfig, TakesConfig
    from mmmgen.generate.prompt import prompt_song
    from mmmgen.generate.sampling import Sampling
    from mmmgen.generate.song import MAX_BARS
    from mmmgen.model.run import find_run, generator_from_run
    from mmmgen.render.files import render_score
    from mmmgen.text.decode import text_to_score

    (c, t, k), ns = parse_config(
        argv, [ExtendConfig, TakesConfig, ControlsConfig], "mmmgen extend",
        f"Continue a piece: every track gets --bars more bars, window by window; its bars (up to {MAX_BARS}) stay as they are.",
        [("input", f"The piece: MMM text (first line; e.g. a piece.txt from generate) or a MIDI file (all its bars, up to {MAX_BARS}).")],
    )
    generator, settings = generator_from_run(find_run(c.model))
    song = prompt_song(ns["input"], settings, c.tempo)
    before = song.n_bars
    sampling = Sampling(c.temperature, c.top_k, c.top_p, c.seed)
    controls = controls_from(k)
    if t.takes is not None:
        takes = generator.extend(song, c.bars or generator.window, sampling, takes=t.takes, controls=controls)
        return write_takes(takes, generator.grid, Path(c.out), c.format, t.rank)
    song = generator.extend(song, c.bars or generator.window, sampling, controls=controls)
    score = text_to_score(song.text, generator.grid, tempo=song.tempo)
    written = render_score(score, Path(c.out) / "piece", c.format, text=song.text)
    print(f"{len(song.tracks)} tracks, {before} + {song.n_bars - before} = {song.n_bars} bars; wrote " + ", ".join(str(p) for p in written))
    return 0


def controls_from(k):
    """The ``Controls`` of the ``--scale``/``--pitch-range``/... flags (None when none is set)."""
    from mmmgen.generate.controls import Controls, parse_pitch_range

    if all(v is None for v in (k.scale, k.pitch_range, k.max_polyphony, k.min_note, k.max_note)):
        return None
    pitch_range = parse_pitch_range(k.pitch_range) if k.pitch_range else None
    return Controls(k.scale, pitch_range, k.max_polyphony, k.min_note, k.max_note)


def write_takes(takes: list, grid: int, out: Path, formats: str, rank: bool) -> int:
    """Write ``out/take-K/piece.*`` for each take (best first with ``rank``) and ``out/takes.csv``; print a line each."""
    import csv

    from mmmgen.generate.song import rank_takes
    from mmmgen.render.files import render_score
    from mmmgen.text.decode import text_to_score

    ordered = rank_takes(takes) if rank else list(takes)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "takes.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["take", "seed", "log_likelihood_per_note"])
        for k, take in enumerate(ordered, 1):
            song = take.song
            score = text_to_score(song.text, grid, tempo=song.tempo)
            written = render_score(score, out / f"take-{k}" / "piece", formats, text=song.text)
            writer.writerow([k, take.seed, f"{take.log_likelihood_per_note:.6f}"])
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
    apply_threads(say=log.info)
    run = find_run(c.model)
    generator, settings = generator_from_run(run)
    codec = settings.get("codec", {})
    app_settings = AppSettings(
        bars=codec.get("bars", 8), grid=codec.get("grid", 12), density_levels=codec.get("density_levels", 10),
        density_edges=settings.get("density_edges", []), genres=generator.genres, concurrency=c.concurrency, queue_size=c.queue_size,
        cache_minutes=c.cache_minutes,
    )
    print(f"model: {run}\nopen http://{c.host}:{c.port}/ in a browser (Ctrl+C stops)")
    serve(build_app(generator, app_settings), c.host, c.port, block=True)
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
    early_setup()  # before torch loads: idle OpenMP threads sleep instead of spinning (config/threads.py)
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
