"""What the app's buttons do: ``Actions`` runs a song operation for a browser session and renders its
result; the ``guarded*`` endpoints turn a button's widget values into one such action.

Every action returns the page's outputs (song, audio, MIDI, piano roll, instruments, MMM text,
session). An impossible action shows a warning and leaves the previous results on the page
(``gr.skip``); an unexpected error is logged, never shown as a stack trace. Stop ends the
session's running generation at its next word (``stop_when``).
"""

from __future__ import annotations

import logging
import threading

from mmmgen.app.operations import UNSAMPLED, extend, regenerate_bars
from mmmgen.app.songs import load_song, song_from_upload
from mmmgen.app.values import NO_SCALE, AppSettings, Widgets, action_controls, describe, kit_program
from mmmgen.app_session import (
    MAX_APP_TAKES,
    Session,
    SongRenderer,
    cache_policy,
    prune_gradio_cache,
)
from mmmgen.errors import MMMGenError
from mmmgen.generate.sampling import GenerationError, stop_when
from mmmgen.generate.song import Generator, Song, rank_takes

log = logging.getLogger(__name__)


def kept(session) -> Session:
    """The browser session's ``Session`` (a new one on its first action)."""
    return session if isinstance(session, Session) else Session()


class Actions:
    """The actions of one app over one loaded generator: its renderer, the stop events of the running
    generations (by browser session) and the ``--load`` piece. Songs and sessions come with each call."""

    def __init__(self, generator: Generator, settings: AppSettings):
        self.generator = generator
        self.settings = settings
        self.render = SongRenderer(settings.grid, settings.keep_renders_s)
        self.running: dict[str, threading.Event] = {}  # session -> the stop event of its running generation (Stop sets it)
        self.opening_song = load_song(settings.load, settings) if settings.load else None
        self.demo = None  # the page (gr.Blocks), set once it is built: its copies of the outputs are pruned

    def respond(self, song: Song | None, session: Session):
        prune_gradio_cache(self.demo, cache_policy(self.settings)[1])
        if song is None:
            return (None, None, None, None, "", "", session)
        audio, midi, roll = self.render(song, session.kit, session)
        return (song, audio, midi, roll, describe(song), song.text, session)

    def finish(self, session: Session, before: Song | None, result, seed: int | None):
        """Show the action's song (the best take first), remember the song before it for undo."""
        if isinstance(result, list):  # takes
            session.takes = takes = rank_takes(result)
            session.take_audio = [self.render(t.song, session.kit, session, picture=False)[0] for t in takes]
            session.seed = ", ".join(f"take {i}: {t.seed}" for i, t in enumerate(takes, 1))
            new = takes[0].song
        else:
            new = result
            if seed is not None:
                session.takes, session.take_audio, session.seed = [], [], str(seed)
        if new != before:
            session.record(before)
        return self.respond(new, session)

    def warn(self, exc: Exception | None, session: Session, what: str = "app action failed"):
        import gradio as gr

        if exc is not None:
            gr.Warning(str(exc))
        else:  # never a stack trace on the page; the log has it
            log.exception(what)
            gr.Warning("Something went wrong; the previous song is kept. See the server log.")
        return (*(gr.skip() for _ in range(6)), session)

    def act(self, action, fill: tuple, song, w: Widgets, session, request=None):
        """Run a song operation (``operations.py``) for a browser session; Stop can end it."""
        session = kept(session)
        key = getattr(request, "session_hash", None)
        stop = threading.Event()
        if key is not None:
            self.running[key] = stop
        try:
            with stop_when(stop):
                return self._act(action, fill, song, w, session)
        finally:
            if key is not None and self.running.get(key) is stop:
                del self.running[key]

    def _act(self, action, fill: tuple, song, w: Widgets, session: Session):
        try:
            c = action_controls(w, session)
            session.kit = kit_program(w.drum_kit)
            result = action(self.generator, song, c, float(w.tempo), int(w.bars), *fill)
            return self.finish(session, song, result, None if action in UNSAMPLED else c["sampling"].seed)
        except (MMMGenError, ValueError) as exc:
            return self.warn(exc, session)
        except Exception:
            return self.warn(None, session)

    def stop(self, request=None):
        """The running generation of the request's browser session ends at its next word."""
        stop = self.running.get(getattr(request, "session_hash", None))
        if stop is not None:
            stop.set()

    def upload(self, song, file, tempo, drum_kit="Standard", session=None):  # tempo, drum_kit: the file's own are used
        import gradio as gr

        from mmmgen.generate.controls import key_of_text

        session = kept(session)
        try:
            new, note = song_from_upload(file, self.settings)  # its own tempo and kit (the page follows: song_widgets)
            if note:
                gr.Warning(f"Uploaded file: {note}")
            try:
                session.uploaded_key = key_of_text(new.text, self.settings.grid)
            except MMMGenError:
                session.uploaded_key = None
            session.kit = None
            session.takes, session.take_audio = [], []
            return self.finish(session, song, new, None)
        except (MMMGenError, ValueError) as exc:
            return self.warn(exc, session)
        except Exception:
            return self.warn(None, session, "upload failed")

    def opening(self, session):
        """A new page starts with the ``--load`` piece."""
        return self.respond(self.opening_song, kept(session))

    def undo(self, song, session, redo: bool = False):
        session = kept(session)
        try:
            return self.respond(session.undo(song, redo), session)
        except MMMGenError as exc:
            return self.warn(exc, session)

    def redo(self, song, session):
        return self.undo(song, session, redo=True)

    def keep_take(self, song, take, session):
        session = kept(session)
        try:
            k = int(take or 1)
            if not 1 <= k <= len(session.takes):
                msg = f"no take {k} on offer ({len(session.takes)} takes)" if session.takes else "no takes on offer: set Takes above 1 first"
                raise GenerationError(msg)
            chosen = session.takes[k - 1]
            session.seed = str(chosen.seed)
            return self.finish(session, song, chosen.song, None)
        except (MMMGenError, ValueError) as exc:
            return self.warn(exc, session)

    def extras(self, session):
        """What the session knows beside the song: seed(s) used, uploaded key, the takes to play."""
        import gradio as gr

        session = kept(session)
        n = len(session.takes)
        audios = [gr.update(value=session.take_audio[i] if i < n else None, visible=i < n) for i in range(MAX_APP_TAKES)]
        choice = gr.update(choices=[str(i) for i in range(1, n + 1)] or ["1"], value="1", visible=n > 1)
        return (session.seed, session.uploaded_key or "", choice, *audios)


def with_request(fn):
    """``fn`` with Gradio's request (its browser session) passed as ``request``, not an API parameter."""
    import gradio as gr

    fn.__annotations__ = {"request": gr.Request}
    return fn


def guarded(actions: Actions, action):
    """The endpoint of a button that reads the common controls only (``operations.BUTTONS``)."""

    def run(song, temperature, genre, instrument, density, tempo, seed, bars, top_p=1.0, top_k=0, meter="4/4",
            scale=NO_SCALE, pitch_low=0, pitch_high=127, drum_kit="Standard", takes=1, chords="", chord_rule="loose", free=False, session=None,
            request=None):
        w = Widgets(temperature, genre, instrument, density, tempo, seed, bars, top_p, top_k, meter, scale, pitch_low, pitch_high,
                    drum_kit, takes, chords, chord_rule, free)
        return actions.act(action, (), song, w, session, request)

    return with_request(run)


def guarded_fill(actions: Actions):
    """The endpoint of Regenerate bars: the common controls, then the track and its first and last bar."""

    def guarded_fill(song, temperature, genre, instrument, density, tempo, seed, bars, track, first, last, top_p=1.0, top_k=0,
                     meter="4/4", scale=NO_SCALE, pitch_low=0, pitch_high=127, drum_kit="Standard", takes=1, chords="", chord_rule="loose",
                     free=False, session=None, request=None):
        w = Widgets(temperature, genre, instrument, density, tempo, seed, bars, top_p, top_k, meter, scale, pitch_low, pitch_high,
                    drum_kit, takes, chords, chord_rule, free)
        return actions.act(regenerate_bars, (track, first, last), song, w, session, request)

    return with_request(guarded_fill)


def guarded_extend(actions: Actions):
    """The endpoint of Continue: the common controls, then the new bars on every track."""

    def guarded_extend(song, temperature, genre, instrument, density, tempo, seed, bars, new_bars=actions.settings.bars, top_p=1.0,
                       top_k=0, meter="4/4", scale=NO_SCALE, pitch_low=0, pitch_high=127, drum_kit="Standard", takes=1, chords="",
                       chord_rule="loose", free=False, session=None, request=None):
        w = Widgets(temperature, genre, instrument, density, tempo, seed, bars, top_p, top_k, meter, scale, pitch_low, pitch_high,
                    drum_kit, takes, chords, chord_rule, free)
        return actions.act(extend, (new_bars,), song, w, session, request)

    return with_request(guarded_extend)


def stop_endpoint(actions: Actions):
    """The endpoint of Stop (``Actions.stop`` with the request of the browser session); its docstring is the API's."""

    def stop_running(request=None):
        """Stop: the session's running generation ends at its next word (queued actions are cancelled by Gradio)."""
        actions.stop(request)

    return with_request(stop_running)
