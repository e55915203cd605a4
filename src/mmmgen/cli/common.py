"""What every sub-command shares: typed configs parsed from flags or YAML, tidy ``--help``, and the
writers of songs and takes (with a progress bar of bars written in a terminal)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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
    return {"chords": h.chords} | ({} if h.chord_rule is None else {"chord_rule": h.chord_rule})


def follow_from(f):
    """The ``Follow`` of the ``--free``/``--register-margin``/``--whole-kit`` flags."""
    from mmmgen.generate.follow import Follow

    return Follow(free=f.free, register_margin=None if f.register_margin < 0 else f.register_margin, whole_kit=f.whole_kit)
