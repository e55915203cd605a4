"""The data's mix: how many training windows each collection gives an epoch (``mmmgen train --mix``).

A corpus of 3,000 chorales and 500 band songs teaches chorales. A mix spec sets each collection's
windows per epoch, so small collections are not drowned:

    GROOVE=0.25,LMD-BEATLES=0.25,BACH=0.05    shares of the epoch (of the train split's size)
    PALESTRINA=2000,NOTTINGHAM=0              windows per epoch (0 leaves a collection out, if there)

A collection is the first folder of a window's ``source`` (``BACH/bwv1.6.mid`` -> ``BACH``; the
folders ``mmmgen corpus`` writes; a file at the top: its genre), or a genre label (its collections, each by
its size); names are case-insensitive. Collections
the spec does not name keep their windows once. A collection asked for more windows than it has
repeats all of them (whole copies, then a seeded sample for the rest: with ``prepare --transpose``
the copies of a pitched collection are its transpositions); one asked for fewer gives a seeded
sample. The selection is drawn once (per seed), so every epoch sees the same windows.
"""

from __future__ import annotations

import random
from collections import Counter

from mmmgen.errors import MMMGenError


class MixError(MMMGenError, ValueError):
    """A mix spec that cannot be read or names no collection of the dataset."""


def parse_mix(spec: str) -> dict[str, float]:
    """``'BACH=0.2,GROOVE=3000'`` -> ``{'BACH': 0.2, 'GROOVE': 3000.0}``; a value below 1 is a share
    of the epoch, 1 or more a number of windows (``1.0`` is one window: write shares as ``0.x``)."""
    out: dict[str, float] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not sep or not name.strip() or number < 0:
            msg = f"--mix: {item!r} is not NAME=SHARE (0 to 1) or NAME=WINDOWS (a count); e.g. BACH=0.2,GROOVE=3000"
            raise MixError(msg)
        out[name.strip().upper()] = number
    if not out:
        msg = "--mix: empty spec"
        raise MixError(msg)
    return out


def collection_of(source: str) -> str:
    """The collection of a window: the first folder of its source path (upper case), '' at the top."""
    head, sep, _ = source.partition("/")
    return head.upper() if sep else ""


def mix_indices(sources: list[str], genres: list[str], spec: dict[str, float], seed: int = 0) -> tuple[list[int], dict]:
    """The row indices of one epoch under ``spec`` (shuffled), and a report ``{collection: {"windows",
    "selected"}}``.

    Raises:
        MixError: a name that is neither a collection nor a genre of the rows.
    """
    groups = [collection_of(s) or g.upper() for s, g in zip(sources, genres, strict=True)]
    by_genre: dict[str, set[str]] = {}
    for group, genre in zip(groups, genres, strict=True):
        by_genre.setdefault(genre.upper(), set()).add(group)
    sizes = Counter(groups)
    targets: dict[str, float] = {}
    for name, value in spec.items():
        named = {name} if name in sizes else by_genre.get(name, set())
        if not named and value == 0:  # leaving out what is not there: nothing to do
            continue
        if not named:
            msg = f"--mix: {name} is not a collection ({', '.join(sorted(sizes))}) or genre ({', '.join(sorted(by_genre))}) of the dataset"
            raise MixError(msg)
        for group in named:  # a genre's share is split among its collections by their size
            part = sizes[group] / sum(sizes[g] for g in named)
            targets[group] = value * part if value >= 1 or value == 0 else value * part * len(sources)
    rows: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        rows.setdefault(group, []).append(i)
    rng, picked, report = random.Random(seed), [], {}
    for group in sorted(rows):
        want = round(targets.get(group, len(rows[group])))
        have = rows[group]
        picked += have * (want // len(have)) + sorted(rng.sample(have, want % len(have)))
        report[group] = {"windows": len(have), "selected": want}
    rng.shuffle(picked)
    return picked, report


def mix_split(split, spec: str, seed: int = 0):
    """``split`` (a ``datasets.Dataset`` with ``source`` and ``genre``) with one epoch's rows of the mix,
    and the report of :func:`mix_indices`."""
    columns = set(split.column_names)
    if not {"source", "genre"} <= columns:
        msg = "--mix needs a dataset with 'source' and 'genre' columns (mmmgen prepare writes them)"
        raise MixError(msg)
    indices, report = mix_indices(split["source"], split["genre"], parse_mix(spec), seed)
    if not indices:
        msg = f"--mix {spec}: no training window left"
        raise MixError(msg)
    return split.select(indices), report


def format_mix(report: dict) -> str:
    """One line: ``BACH 953 -> 400, GROOVE 1,100 -> 3,000, ...``."""
    return ", ".join(f"{g or '(top)'} {r['windows']:,} -> {r['selected']:,}" for g, r in report.items())
