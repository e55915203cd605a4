"""What the app keeps per browser session, and its cleanup (``app/`` builds the page over it).

``Session``: a bounded undo/redo history, the seed used, the takes on offer and the session's
render folders; ``SongRenderer``: audio, MIDI and piano roll of a song into bounded, per-session
folders; the cache policy and the pass that deletes gradio's old copies of the outputs.
"""

from __future__ import annotations

import gc
import logging
import shutil
import tempfile
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from mmmgen.generate.sampling import GenerationError
from mmmgen.generate.song import Song

log = logging.getLogger(__name__)

HISTORY = 20  # undo steps kept per session
KEEP_RENDERS = 3  # render folders of the song kept per session (the takes' come on top)
MAX_APP_TAKES = 4  # takes per action in the app


class SongRenderer:
    """Writes a song's MIDI, audio and piano roll into a private temp folder, pruning old ones."""

    def __init__(self, grid: int, keep_s: float):
        self.grid, self.keep_s = grid, keep_s
        self._dir = tempfile.TemporaryDirectory(prefix="mmmgen-app-")  # removed at exit
        self.root = Path(self._dir.name)

    def __call__(self, song: Song, kit: int | None = 0, session: Session | None = None, picture: bool = True) -> tuple[str, str, str | None]:
        """Audio, MIDI and piano roll of ``song``, drums with GM2 kit ``kit`` (None: the song's own,
        an uploaded file's), with its tempo map and track names (``song_to_score``), in a folder of ``session``."""
        from mmmgen.generate.prompt import song_to_score
        from mmmgen.render.files import plot_pianoroll, render_audio, write_midi

        self._prune()
        out = self.root / uuid.uuid4().hex
        out.mkdir()
        if session is not None:
            session.keep(out)
        score = song_to_score(song, self.grid)
        for track in score.tracks:
            if track.is_drum and kit is not None:
                track.program = int(kit)  # on channel 10 the program picks the kit
        if not picture:
            return str(render_audio(score, out / "song.wav")), str(write_midi(score, out / "song.mid")), None
        midi = write_midi(score, out / "song.mid")
        audio = render_audio(score, out / "song.wav")
        roll = plot_pianoroll(score, out / "pianoroll.png")
        gc.collect()  # a matplotlib figure is cyclic garbage: without this the server's RSS grows ~0.5 MB a render
        return str(audio), str(midi), str(roll)

    def _prune(self, most: int = 256) -> None:
        """Delete folders older than ``keep_s``, and the oldest beyond ``most`` (gradio has its own copies)."""
        cutoff = time.time() - self.keep_s
        dirs = sorted(self.root.iterdir(), key=lambda d: d.stat().st_mtime)
        for k, d in enumerate(dirs):
            if d.stat().st_mtime < cutoff or k < len(dirs) - most:
                shutil.rmtree(d, ignore_errors=True)


@dataclass
class Session:
    """One browser session: undo/redo history, the seed last used, the takes on offer, render folders."""

    past: list = field(default_factory=list)  # songs before each action (None: the empty page)
    future: list = field(default_factory=list)  # songs undone, for redo
    seed: str = ""  # the seed(s) the last action used
    takes: list = field(default_factory=list)  # ``Take`` s on offer, best first
    take_audio: list = field(default_factory=list)
    uploaded_key: str | None = None  # estimated key of the uploaded MIDI file
    kit: int | None = 0  # GM2 drum kit of the renders (None: the song's own)
    dirs: deque = field(default_factory=deque)  # render folders, oldest first

    def record(self, before) -> None:
        """An action changed the song: ``before`` can be undone to; redo is forgotten."""
        self.past.append(before)
        del self.past[:-HISTORY]
        self.future.clear()

    def undo(self, current, redo: bool = False):
        """The song before ``current`` (after it with ``redo``)."""
        source, target = (self.future, self.past) if redo else (self.past, self.future)
        if not source:
            msg = f"nothing to {'redo' if redo else 'undo'}"
            raise GenerationError(msg)
        target.append(current)
        return source.pop()

    def keep(self, folder: Path) -> None:
        """A new render folder; the oldest beyond the bound are deleted."""
        self.dirs.append(folder)
        while len(self.dirs) > KEEP_RENDERS + MAX_APP_TAKES:
            shutil.rmtree(self.dirs.popleft(), ignore_errors=True)

def cache_policy(settings) -> tuple[int, int]:
    """Gradio's ``delete_cache``: every fifth of ``cache_minutes``, delete files older than it."""
    keep = max(int(settings.cache_minutes * 60), 60)
    return max(keep // 5, 12), keep


def prune_gradio_cache(demo, keep_s: float) -> None:
    """Delete this app's files in gradio's cache older than ``keep_s`` (gradio's ``delete_cache`` task
    iterates live sets and dies for good once one changes size meanwhile, as under load)."""
    cutoff, keep = time.time() - keep_s, set().union(*(getattr(b, "keep_in_cache", set()) for b in demo.blocks.values()))
    for files in list(demo.temp_file_sets):
        for f in list(files):
            try:
                if f not in keep and Path(f).lstat().st_ctime < cutoff:
                    Path(f).unlink()
                    files.discard(f)
            except FileNotFoundError:
                files.discard(f)
            except OSError:
                pass


def close_session(session) -> None:
    """``gr.State`` delete callback: the session ended, its render folders go."""
    while isinstance(session, Session) and session.dirs:
        shutil.rmtree(session.dirs.popleft(), ignore_errors=True)
