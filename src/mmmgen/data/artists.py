"""Artists and their genres: the artist key names are matched by, the artist CSV, atomic writes.

Shared by ``genres`` (labelling a collection) and ``spotify`` (looking artists up), which both import
it: neither imports the other at module level.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from mmmgen.errors import MMMGenError

log = logging.getLogger(__name__)


class GenreError(MMMGenError):
    """Bad input to ``mmmgen genres``: no source, an unreadable CSV, genre map or cache."""


def artist_key(name: str) -> str:
    """Artist name for matching: case, accents, punctuation, quotes and spaces ignored.

    ``'"Weird Al" Yankovic'``, ``'WEIRD_AL_YANKOVIC'`` and ``'weird al yankovic'`` share a key;
    ``&`` reads as ``and``.
    """
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold().replace("&", " and ")
    return re.sub(r"[\W_]+", "", text)


# --- artist CSV ---------------------------------------------------------------------------------
@dataclass
class ArtistTable:
    """Artist -> genre from a CSV. ``coarse``: the tutorial's hand-grouped ``Genre_ChatGPT`` labels."""

    genres: dict[str, str]
    coarse: bool = False

    def get(self, artist: str) -> str | None:
        """The genre written for ``artist`` (matched by ``artist_key``), or None."""
        return self.genres.get(artist_key(artist))


def read_artist_csv(path: str | Path) -> ArtistTable:
    """Read the tutorial's ``Artist,Genre_ChatGPT,Formatted_Artist`` CSV or a plain ``artist,genre``.

    Raises:
        GenreError: when the file is missing or lacks the columns.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except OSError as exc:
        msg = f"cannot read artist CSV {path}: {exc.strerror or exc}"
        raise GenreError(msg) from exc
    header = [cell.strip().casefold() for cell in rows[0]] if rows else []
    coarse = "genre_chatgpt" in header
    if "artist" not in header or not (coarse or "genre" in header):
        msg = f"{path}: expected columns 'artist,genre' or the tutorial's 'Artist,Genre_ChatGPT', found {rows[0] if rows else 'nothing'}"
        raise GenreError(msg)
    name_cols = [header.index(c) for c in ("artist", "formatted_artist") if c in header]
    genre_col = header.index("genre_chatgpt" if coarse else "genre")
    genres: dict[str, str] = {}
    for row in rows[1:]:
        genre = row[genre_col].strip() if genre_col < len(row) else ""
        if not genre:
            continue
        for col in name_cols:
            if col < len(row) and artist_key(row[col]):
                genres.setdefault(artist_key(row[col]), genre)
    log.info("%s: %d artists (%s labels)", path, len(genres), "coarse" if coarse else "fine")
    return ArtistTable(genres, coarse)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
