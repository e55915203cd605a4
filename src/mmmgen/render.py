"""MMM text becomes something to hear and see: MIDI files (audio and pictures come later)."""

from __future__ import annotations

import logging
from pathlib import Path

from mmmgen.codec import text_to_score
from mmmgen.errors import MMMGenError

log = logging.getLogger(__name__)

FORMATS = ("mid",)


class RenderError(MMMGenError):
    """A rendering request that cannot be met (unknown format, missing input)."""


def write_midi(score, path: str | Path) -> Path:
    """Write a ``symusic.Score`` as a standard MIDI file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    score.dump_midi(str(path))
    return path


def read_pieces(path: str | Path) -> list[str]:
    """MMM pieces from a text file, one per non-empty line."""
    path = Path(path)
    if not path.is_file():
        msg = f"input not found: {path}"
        raise RenderError(msg)
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def render_file(
    input_path: str | Path,
    out_dir: str | Path,
    formats: list[str] | tuple[str, ...] = ("mid",),
    tempo: float | None = None,
    grid: int = 12,
) -> list[Path]:
    """Render every piece of a text file to ``out_dir/0000.<fmt>``, ``0001.<fmt>``, ..."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        msg = f"unknown format(s) {unknown}; choose from {list(FORMATS)}"
        raise RenderError(msg)
    out_dir = Path(out_dir)
    written = []
    for i, text in enumerate(read_pieces(input_path)):
        score = text_to_score(text, grid=grid, tempo=tempo)
        written.append(write_midi(score, out_dir / f"{i:04d}.mid"))
    return written
