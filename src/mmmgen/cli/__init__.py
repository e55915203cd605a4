"""The ``mmmgen`` command: one sub-command per pipeline stage, each a thin layer over the library.

Each sub-command parses its typed config (``config.py``) with ``HfArgumentParser`` from flags or
``--config FILE.yaml`` (flags win), calls ONE library function and prints its report. Errors in
the user's input are printed as one line with exit code 2; nothing heavy is imported until a
sub-command runs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from mmmgen.cli.common import follow_from, parse_config, tidy_help
from mmmgen.cli.data import (
    cmd_chords,
    cmd_corpus,
    cmd_genres,
    cmd_prepare,
    cmd_render,
    cmd_tokenizer,
)
from mmmgen.cli.generate import cmd_extend, cmd_generate, cmd_harmonize, cmd_infill
from mmmgen.cli.model import cmd_app, cmd_evaluate, cmd_size, cmd_space, cmd_sweep, cmd_train
from mmmgen.config.threads import early_setup
from mmmgen.errors import MMMGenError

__all__ = ["COMMANDS", "follow_from", "main", "parse_config", "tidy_help", "usage"]

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
