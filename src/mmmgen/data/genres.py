"""Genre labels for large MIDI collections (Lakh MIDI Clean ``Artist/Title.mid``): ``mmmgen genres``.

The tutorial asked Spotify's search API for each artist's genres and then grouped the fine genres
by hand into a small set. Here one call does it all: the parent folder of each file names the
artist (looked up in an artist CSV, then on Spotify) or the genre itself; a genre map groups fine
genres (``dance pop``) into coarse ones (``POP``); rare genres can be merged into ``OTHER``. The
result is a ``path,genre`` CSV for ``mmmgen prepare --genres`` and a balance report.

Spotify answers (looked up by ``mmmgen.data.spotify``) are cached in a JSON file rewritten atomically
after each answer, so an interrupted run loses nothing and a rerun makes no request for artists
already answered.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from mmmgen.data.artists import GenreError, read_artist_csv, write_atomic
from mmmgen.text import vocab as V

if TYPE_CHECKING:
    from mmmgen.data.spotify import SpotifyClient, SpotifyLookup

log = logging.getLogger(__name__)

FOLDER_MODES = ("artist", "genre")
OTHER = V.OTHER_GENRE


# --- genre map ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenreRule:
    """Fine genres matching ``pattern`` (searched, case-insensitive) become ``genre``."""

    pattern: re.Pattern[str]
    genre: str


class GenreMap:
    """An ordered list of rules fine genre -> coarse genre; the first matching rule wins."""

    def __init__(self, rules: Sequence[GenreRule], source: str = "") -> None:
        self.rules = list(rules)
        self.source = source

    def coarse(self, fine: str) -> tuple[int, str] | None:
        """``(rule index, coarse genre)`` of the first rule matching ``fine``, or None."""
        for i, rule in enumerate(self.rules):
            if rule.pattern.search(fine):
                return i, rule.genre
        return None

    def group(self, fines: Iterable[str]) -> str | None:
        """The coarse genre most of ``fines`` map to (ties: the earlier rule); None if none maps."""
        votes: Counter[str] = Counter()
        first: dict[str, int] = {}
        for fine in fines:
            hit = self.coarse(fine)
            if hit:
                votes[hit[1]] += 1
                first[hit[1]] = min(first.get(hit[1], hit[0]), hit[0])
        return min(votes, key=lambda g: (-votes[g], first[g])) if votes else None


def default_genre_map_text() -> str:
    """The YAML text of the genre map shipped with the project (common Spotify genres)."""
    from importlib.resources import files

    return (files("mmmgen") / "resources" / "genre_map.yaml").read_text(encoding="utf-8")


def parse_genre_map(text: str, source: str = "genre map") -> GenreMap:
    """Build a ``GenreMap`` from YAML: a list of ``{pattern: REGEX | [REGEX...], genre: COARSE}``.

    ``contains: TEXT | [TEXT...]`` may replace ``pattern`` for literal substrings.

    Raises:
        GenreError: when the YAML or a rule is malformed.
    """
    import yaml

    try:
        items = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        msg = f"{source}: not valid YAML: {exc}"
        raise GenreError(msg) from exc
    if isinstance(items, dict) and "rules" in items:
        items = items["rules"]
    if not isinstance(items, list) or not items:
        msg = f"{source}: expected a list of rules like '- {{pattern: dance pop, genre: POP}}'"
        raise GenreError(msg)
    rules = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict) or not item.get("genre") or ("pattern" in item) == ("contains" in item):
            msg = f"{source}: rule {i} needs 'genre' and one of 'pattern' or 'contains', got {item!r}"
            raise GenreError(msg)
        key = "pattern" if "pattern" in item else "contains"
        values = item[key] if isinstance(item[key], list) else [item[key]]
        parts = [str(v) if key == "pattern" else re.escape(str(v)) for v in values]
        try:
            pattern = re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE)
        except re.error as exc:
            msg = f"{source}: rule {i}: bad regular expression {values!r}: {exc}"
            raise GenreError(msg) from exc
        rules.append(GenreRule(pattern, V.normalize_genre(str(item["genre"]))))
    return GenreMap(rules, source)


def load_genre_map(path: str | Path | None = None) -> GenreMap:
    """The genre map at ``path``, or the built-in default map when ``path`` is None or ``'default'``."""
    if path is None or str(path) == "default":
        return parse_genre_map(default_genre_map_text(), "default genre map")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read genre map {path}: {exc.strerror or exc}"
        raise GenreError(msg) from exc
    return parse_genre_map(text, str(path))


# --- labelling a collection ---------------------------------------------------------------------
def write_labels_csv(path: str | Path, labels: dict[str, str]) -> None:
    """Write ``path,genre`` rows (the format of ``mmmgen prepare --genres``) atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "genre"])
    writer.writerows(sorted(labels.items()))
    write_atomic(Path(path), buffer.getvalue())


def merge_rare(labels: dict[str, str], min_count: int) -> dict[str, int]:
    """Relabel genres with fewer than ``min_count`` files as OTHER (in place); returns those merged."""
    counts = Counter(labels.values())
    rare = {g: n for g, n in counts.items() if n < min_count and g != OTHER}
    for source, genre in labels.items():
        if genre in rare:
            labels[source] = OTHER
    return rare


def format_balance(counts: dict[str, int], width: int = 40) -> str:
    """Files per genre with shares and an ASCII bar chart (largest first, OTHER last)."""
    total = sum(counts.values())
    if not total:
        return "no files"
    top = max(counts.values())
    name_w = max(len("genre"), *(len(g) for g in counts))
    lines = [f"{'genre':<{name_w}}  {'files':>7}  {'share':>6}"]
    for genre in sorted(counts, key=lambda g: (g == OTHER, -counts[g], g)):
        n = counts[genre]
        bar = "#" * max(1 if n else 0, round(n / top * width))
        lines.append(f"{genre:<{name_w}}  {n:>7}  {n / total:>6.1%}  {bar}")
    return "\n".join(lines)


@dataclass
class GenreReport:
    """What ``label_collection`` did: labels per file, counts, and why files fell to OTHER."""

    midi_dir: str
    labels: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    other_reasons: dict[str, int] = field(default_factory=dict)
    merged: dict[str, int] = field(default_factory=dict)
    unmatched: dict[str, int] = field(default_factory=dict)
    spotify: SpotifyLookup | None = None
    min_count: int = 0
    out: str | None = None

    def summary(self) -> str:
        """The balance report the CLI prints."""
        labelled = {g: n for g, n in self.counts.items() if g != OTHER}
        lines = [f"{len(self.labels)} MIDI files under {self.midi_dir}: {len(labelled)} genre{'s' * (len(labelled) != 1)} + {OTHER}", format_balance(self.counts)]
        if len(labelled) > 1:
            lines.append(f"balance: the largest genre has {max(labelled.values()) / min(labelled.values()):.1f}x the files of the smallest")
        if self.other_reasons:
            lines.append(f"{OTHER} for lack of a label: " + ", ".join(f"{r} {n}" for r, n in sorted(self.other_reasons.items())))
        if self.merged:
            lines.append(f"merged into {OTHER} (fewer than {self.min_count} files): " + ", ".join(f"{g} {n}" for g, n in sorted(self.merged.items())))
        if self.spotify:
            s = self.spotify
            lines.append(f"Spotify: {s.artists} artists, {s.cached} from the cache, {s.requested} requested, {len(s.failed)} failed")
            if s.failed:
                shown = list(s.failed.items())[:10]
                lines.append("  failed (rerun to retry; answers so far are cached): " + "; ".join(f"{a}: {r}" for a, r in shown)
                             + (f"; ... {len(s.failed) - len(shown)} more" if len(s.failed) > len(shown) else ""))
        if self.unmatched:
            top = Counter(self.unmatched).most_common(15)
            lines.append("fine genres no rule matched (add rules with --group MAP.yaml): " + ", ".join(f"{g} ({n})" for g, n in top))
        if self.out:
            lines.append(f"labels written to {self.out}")
        return "\n".join(lines)


def default_cache_path(out: str | Path) -> Path:
    """The Spotify cache next to the labels CSV: ``labels.csv`` -> ``labels.spotify-cache.json``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.spotify-cache.json")


def label_collection(
    midi_dir: str | Path,
    out: str | Path | None = None,
    *,
    artist_csv: str | Path | None = None,
    from_folders: str | None = None,
    spotify: SpotifyClient | None = None,
    group: GenreMap | str | Path | None = None,
    min_count: int = 0,
    cache: str | Path | None = None,
    progress: bool = True,
) -> GenreReport:
    """Label every MIDI file under ``midi_dir`` with a token-safe genre; write ``out`` if given.

    Args:
        midi_dir: the collection; each file's parent folder names its artist or genre.
        out: the ``path,genre`` CSV to write (paths relative to ``midi_dir``).
        artist_csv: artist -> genre CSV (see ``read_artist_csv``); tried before Spotify.
        from_folders: ``'artist'`` (the default with a CSV or Spotify) or ``'genre'``.
        spotify: a client to look up artists missing from the CSV.
        group: a ``GenreMap``, a YAML path, ``'default'`` or ``'none'``; None means the default
            map when Spotify is used and no grouping otherwise. Labels of the tutorial's CSV are
            already coarse and only normalised.
        min_count: genres with fewer files are merged into OTHER.
        cache: the Spotify JSON cache (default: next to ``out``; memory only without ``out``).
        progress: show a progress bar over Spotify lookups.

    Raises:
        GenreError: for a missing or contradictory source, no MIDI files or bad inputs.
    """
    from mmmgen.data.prepare import find_midi_files
    from mmmgen.data.spotify import SpotifyCache, lookup_spotify

    has_lookup = bool(artist_csv or spotify)
    from_folders = from_folders or ("artist" if has_lookup else None)
    if from_folders not in FOLDER_MODES:
        msg = "no genre source: give --artist-csv FILE, --spotify or --from-folders artist|genre" if from_folders is None else f"--from-folders must be one of {FOLDER_MODES}, got {from_folders!r}"
        raise GenreError(msg)
    if from_folders == "genre" and has_lookup:
        msg = "--from-folders genre takes the genre from the folder names; it cannot be combined with --artist-csv or --spotify"
        raise GenreError(msg)
    if from_folders == "artist" and not has_lookup:
        msg = "--from-folders artist needs --artist-csv FILE or --spotify to look the artists up"
        raise GenreError(msg)
    if min_count < 0:
        msg = f"--min-count must be at least 0, got {min_count}"
        raise GenreError(msg)
    if group is None:
        group = "default" if spotify else "none"
    gmap = group if isinstance(group, GenreMap) else None if str(group) == "none" else load_genre_map(group)
    table = read_artist_csv(artist_csv) if artist_csv else None
    root = Path(midi_dir)
    sources = [p.relative_to(root).as_posix() for p in find_midi_files(root)]
    if not sources:
        msg = f"no MIDI files (.mid/.midi) under {root}"
        raise GenreError(msg)
    folder = {s: PurePosixPath(s).parent.name for s in sources}
    unmatched: Counter[str] = Counter()

    def label(fines: list[str], empty_reason: str) -> tuple[str, str | None]:
        if not fines:
            return OTHER, empty_reason
        if gmap is None:
            return V.normalize_genre(fines[0]), None
        coarse = gmap.group(fines)
        if coarse is None:
            unmatched.update(fines)
            return OTHER, "no rule of the genre map matched"
        return coarse, None

    names = sorted({n for n in folder.values() if n})
    by_folder: dict[str, tuple[str, str | None]] = {}
    lookup = None
    if from_folders == "genre":
        by_folder = {n: label([n], "empty folder name") for n in names}
    else:
        missing = []
        for name in names:
            genre = table.get(name) if table else None
            if genre is None:
                missing.append(name)
            elif table and table.coarse:
                by_folder[name] = (V.normalize_genre(genre), None)
            else:
                by_folder[name] = label([genre], "empty genre")
        if spotify and missing:
            cache_path = cache or (default_cache_path(out) if out else None)
            lookup = lookup_spotify(missing, spotify, SpotifyCache(cache_path), progress=progress)
            for name in missing:
                if name in lookup.failed:
                    by_folder[name] = (OTHER, "Spotify lookup failed")
                else:
                    by_folder[name] = label(lookup.genres[name], "no genre on Spotify")
        for name in missing:
            by_folder.setdefault(name, (OTHER, "artist not in the CSV"))

    report = GenreReport(str(midi_dir), spotify=lookup, min_count=min_count, unmatched=dict(unmatched))
    reasons: Counter[str] = Counter()
    for source in sources:
        genre, reason = by_folder.get(folder[source], (OTHER, "file not in a sub-folder"))
        report.labels[source] = genre
        if reason:
            reasons[reason] += 1
    report.other_reasons = dict(reasons)
    report.merged = merge_rare(report.labels, min_count)
    report.counts = dict(Counter(report.labels.values()))
    if out:
        write_labels_csv(out, report.labels)
        report.out = str(out)
        log.info("wrote %d labels to %s", len(report.labels), out)
    return report
