"""Sub-commands that write music: generate, infill, extend, harmonize."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mmmgen.cli.common import (
    bars_progress,
    chords_from,
    controls_from,
    follow_from,
    parse_config,
    write_song,
    write_takes,
)
from mmmgen.config.threads import apply_threads

log = logging.getLogger("mmmgen")


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
    apply_threads(say=log.info)  # the cores others leave free (a training run beside it keeps its share)
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
    apply_threads(say=log.info)  # the cores others leave free (a training run beside it keeps its share)
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
    apply_threads(say=log.info)  # the cores others leave free (a training run beside it keeps its share)
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
    apply_threads(say=log.info)  # the cores others leave free (a training run beside it keeps its share)
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
