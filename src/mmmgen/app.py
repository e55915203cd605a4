"""The web app: the tutorial's Gradio Space done properly (``mmmgen app``).

``build_app(generator, settings)`` returns a ``gr.Blocks``; the model is loaded once by the caller
and passed in (no module-level state). Each browser session keeps its own song in ``gr.State``.
Every action turns widget values into one ``Generator`` call, renders the song (audio, MIDI,
piano roll) and returns the outputs; an impossible action shows a warning and leaves the previous
results on the page.

A ``Session`` (``gr.State``) keeps a bounded undo/redo history (``/undo``, ``/redo``), the seed
used, the takes on offer (``/keep_take``) and its render folders (bounded, deleted with it). Scale
lock (or the key of an uploaded MIDI), pitch range, top-p/k, meter and drum kit follow each endpoint's
original parameters. Stop cancels queued actions and stops a running generation at its next word
(``stop_when``), so the next action does not wait for it.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path

from mmmgen.app_session import (
    MAX_APP_TAKES,
    Session,
    SongRenderer,
    cache_policy,
    close_session,
    prune_gradio_cache,
)
from mmmgen.errors import MMMGenError
from mmmgen.generate.sampling import GenerationError, Sampling, stop_when
from mmmgen.generate.song import MAX_BARS, Generator, Song
from mmmgen.text import vocab as V

log = logging.getLogger(__name__)

RANDOM_GENRE = "RANDOM"
MODEL_CHOICE = "Model's choice"
AUTO_DENSITY = "auto"
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
ACTIONS = ("start", "add", "remove_last", "regenerate_last", "change_tempo", "regenerate_bars", "extend")
MAX_LENGTH_BARS = 128  # the length control's maximum (Continue makes a song longer, up to MAX_BARS)
MAX_UPLOAD_BARS = MAX_BARS  # an upload keeps this many bars at most (a message says when it is cut)
NO_SCALE = "off"
UPLOAD_KEY = "Key of the uploaded MIDI"
SONG_KIT = "As in the song (an uploaded file's)"  # drum kit choice: the kit the song came with
TEMPO_RANGE = (20, 300)  # BPM of the tempo slider
SESSION_TTL_S = 3600  # a session's state (history, takes, render folders) lives this long after its last action


@dataclass
class AppSettings:
    """What the app needs to know about the model's data (from the run folder)."""

    bars: int = 8
    grid: int = 12
    density_levels: int = 10
    density_edges: list[float] = field(default_factory=list)
    genres: list[str] = field(default_factory=list)
    concurrency: int = 1  # generations at once (CPU: one at a time is fastest overall)
    queue_size: int = 16  # waiting requests beyond this are turned away with a message
    keep_renders_s: float = 900.0  # rendered files older than this are deleted
    cache_minutes: float = 10.0  # gradio's copies of the outputs older than this are deleted
    load: str | None = None  # a piece (MMM text or MIDI) every new page starts with (``mmmgen app --load``)


def fresh_seed() -> int:
    """A random seed that can be typed back in (1 .. 2**31 - 1)."""
    return random.SystemRandom().randrange(1, 2**31)


def meter_choices(generator: Generator) -> list[str]:
    """The meters the model's vocabulary knows, as ``4/4``."""
    meters = {V.parse_time_signature(V.parse_word(w).value) for w in generator.table.ids if V.parse_word(w).kind == V.TIME_SIGNATURE}
    return [f"{n}/{d}" for n, d in sorted(m for m in meters if m)] or ["4/4"]


def scale_choices() -> list[str]:
    from mmmgen.generate.controls import SCALES, TONICS

    return [NO_SCALE, UPLOAD_KEY, *(f"{t}:{m}" for m in SCALES for t in TONICS)]


def make_controls(scale, low, high, session: Session | None):
    """Widget values -> ``Controls`` (None when none is set)."""
    from mmmgen.generate.controls import Controls

    if scale in (None, "", NO_SCALE):
        scale = None
    elif scale == UPLOAD_KEY:
        if session is None or not session.uploaded_key:
            msg = "upload a MIDI file first: its key is estimated from its notes"
            raise GenerationError(msg)
        scale = session.uploaded_key
    low, high = (0 if low in (None, "") else int(low)), (127 if high in (None, "") else int(high))
    pitch_range = None if (low, high) == (0, 127) else (low, high)
    if scale is None and pitch_range is None:
        return None
    return Controls(scale=scale, pitch_range=pitch_range)


def make_harmony(chords, chord_rule) -> dict:
    """Widget values -> ``chords=``/``chord_rule=`` of the song operations (an empty progression: the song's own)."""
    from mmmgen.generate.progression import load_chords

    text = (chords or "").strip()
    if text:
        load_chords(text)  # a bad chord is a warning before anything runs
    return {"chords": text or None, "chord_rule": chord_rule or "loose"}


def instrument_choices() -> list[str]:
    from mmmgen.render.gm import instrument_name

    return [MODEL_CHOICE, "Drums", *(instrument_name(p) for p in range(V.N_PROGRAMS))]


def parse_controls(temperature, genre, instrument, density, seed, top_p=1.0, top_k=0) -> dict:
    """Widget values -> Generator arguments. Seed 0 or empty means a fresh random seed (drawn here,
    so it can be shown and typed back in)."""
    from mmmgen.render.gm import program_from_name

    seed = int(seed) if seed not in (None, "") and int(seed) != 0 else fresh_seed()
    top_p = 1.0 if top_p in (None, "") else min(max(float(top_p), 0.01), 1.0)
    top_k = 0 if top_k in (None, "") else max(int(top_k), 0)
    sampling = Sampling(temperature=max(float(temperature), 0.01), top_k=top_k, top_p=top_p, seed=seed)
    inst = None if instrument in (None, "", MODEL_CHOICE) else program_from_name(instrument)
    level = None if density in (None, "", AUTO_DENSITY) else int(density)
    return {
        "sampling": sampling,
        "instrument": inst,
        "density": level,
        "genre": None if genre in (None, "", RANDOM_GENRE) else genre,
    }


def describe(song: Song) -> str:
    from mmmgen.render.gm import instrument_name

    return "\n".join(f"{i}. {instrument_name(p, d)}" for i, (p, d) in enumerate(song.instruments, 1))


def build_app(generator: Generator, settings: AppSettings | None = None):
    """The Gradio Blocks app over one loaded generator."""
    import gradio as gr

    from mmmgen.generate.controls import key_of_text
    from mmmgen.generate.follow import Follow
    from mmmgen.generate.song import rank_takes
    from mmmgen.render.gm import DRUM_KITS

    settings = settings or AppSettings()
    render = SongRenderer(settings.grid, settings.keep_renders_s)
    genres = settings.genres or generator.genres
    meters = meter_choices(generator)
    running: dict[str, threading.Event] = {}  # session -> the stop event of its running generation (Stop sets it)
    opening_song = load_song(settings.load, settings) if settings.load else None

    def respond(song: Song | None, session: Session):
        prune_gradio_cache(demo, cache_policy(settings)[1])
        if song is None:
            return (None, None, None, None, "", "", session)
        audio, midi, roll = render(song, session.kit, session)
        return (song, audio, midi, roll, describe(song), song.text, session)

    def kept(session) -> Session:
        return session if isinstance(session, Session) else Session()

    def finish(session: Session, before: Song | None, result, seed: int | None):
        """Show the action's song (the best take first), remember the song before it for undo."""
        if isinstance(result, list):  # takes
            session.takes = takes = rank_takes(result)
            session.take_audio = [render(t.song, session.kit, session, picture=False)[0] for t in takes]
            session.seed = ", ".join(f"take {i}: {t.seed}" for i, t in enumerate(takes, 1))
            new = takes[0].song
        else:
            new = result
            if seed is not None:
                session.takes, session.take_audio, session.seed = [], [], str(seed)
        if new != before:
            session.record(before)
        return respond(new, session)

    def warn(exc: Exception | None, session: Session, what: str = "app action failed"):
        if exc is not None:
            gr.Warning(str(exc))
        else:  # never a stack trace on the page; the log has it
            log.exception(what)
            gr.Warning("Something went wrong; the previous song is kept. See the server log.")
        return (*(gr.skip() for _ in range(6)), session)

    def act(action, fill, song, temperature, genre, instrument, density, tempo, seed, bars, top_p, top_k, meter, scale, low, high, kit, takes,
            harmony, session, request=None, free=False):
        session = kept(session)
        key = getattr(request, "session_hash", None)
        stop = threading.Event()
        if key is not None:
            running[key] = stop
        try:
            with stop_when(stop):
                return _act(action, fill, song, temperature, genre, instrument, density, tempo, seed, bars, top_p, top_k,
                            meter, scale, low, high, kit, takes, harmony, session, free)
        finally:
            if key is not None and running.get(key) is stop:
                del running[key]

    def stop_running(request=None):
        """Stop: the session's running generation ends at its next word (queued actions are cancelled by Gradio)."""
        stop = running.get(getattr(request, "session_hash", None))
        if stop is not None:
            stop.set()

    def _act(action, fill, song, temperature, genre, instrument, density, tempo, seed, bars, top_p, top_k, meter, scale, low, high, kit,
             takes, harmony, session, free=False):
        try:
            c = parse_controls(temperature, genre, instrument, density, seed, top_p, top_k)
            c["follow"] = Follow(free=bool(free))  # the song-derived rules (generate/follow.py), off with "Free"
            c["controls"] = make_controls(scale, low, high, session)
            c["harmony"] = make_harmony(*harmony)
            c["meter"] = V.parse_time_signature(str(meter or "4/4")) or (4, 4)
            c["takes"] = min(int(takes), MAX_APP_TAKES) if takes not in (None, "") and int(takes) > 1 else None
            session.kit = kit_program(kit)
            result = action(song, c, float(tempo), int(bars), *fill)
            sampled = action not in (remove_last, change_tempo)
            return finish(session, song, result, c["sampling"].seed if sampled else None)
        except (MMMGenError, ValueError) as exc:
            return warn(exc, session)
        except Exception:
            return warn(None, session)

    def guarded(action):
        def run(song, temperature, genre, instrument, density, tempo, seed, bars, top_p=1.0, top_k=0, meter="4/4",
                scale=NO_SCALE, pitch_low=0, pitch_high=127, drum_kit="Standard", takes=1, chords="", chord_rule="loose", free=False, session=None,
                request=None):
            return act(action, (), song, temperature, genre, instrument, density, tempo, seed, bars, top_p, top_k, meter,
                       scale, pitch_low, pitch_high, drum_kit, takes, (chords, chord_rule), session, request, free)

        run.__annotations__ = {"request": gr.Request}  # Gradio passes the request (its session) here; not an API parameter
        return run

    def guarded_fill(song, temperature, genre, instrument, density, tempo, seed, bars, track, first, last, top_p=1.0, top_k=0,
                     meter="4/4", scale=NO_SCALE, pitch_low=0, pitch_high=127, drum_kit="Standard", takes=1, chords="", chord_rule="loose",
                     free=False, session=None, request=None):
        return act(regenerate_bars, (track, first, last), song, temperature, genre, instrument, density, tempo, seed, bars,
                   top_p, top_k, meter, scale, pitch_low, pitch_high, drum_kit, takes, (chords, chord_rule), session, request, free)

    def need(song: Song | None) -> Song:
        if song is None or not song.tracks:
            msg = "Start from scratch (or upload a MIDI file) first."
            raise GenerationError(msg)
        return song

    def start(song, c, tempo, bars):
        return generator.start(
            c["genre"], time_signature=c["meter"], n_bars=bars, tempo=tempo, takes=c["takes"],
            instrument=c["instrument"], density=c["density"], sampling=c["sampling"], controls=c["controls"], **c["harmony"],
        )

    def add(song, c, tempo, bars):
        song = generator.change_tempo(need(song), tempo)
        new = c["instrument"] is None
        return generator.add_track(
            song, instrument=c["instrument"], density=c["density"], new_instrument=new, sampling=c["sampling"],
            takes=c["takes"], controls=c["controls"], follow=c["follow"], **c["harmony"],
        )

    def remove_last(song, c, tempo, bars):
        return generator.remove_last(need(song))

    def regenerate_last(song, c, tempo, bars):
        kwargs = {"density": c["density"], "sampling": c["sampling"], "takes": c["takes"], "controls": c["controls"], "follow": c["follow"], **c["harmony"]}
        if c["instrument"] is not None:
            kwargs["instrument"] = c["instrument"]
        return generator.regenerate_last(generator.change_tempo(need(song), tempo), **kwargs)

    def change_tempo(song, c, tempo, bars):
        return generator.change_tempo(need(song), tempo)

    def regenerate_bars(song, c, tempo, _bars, track, first, last):
        song = generator.change_tempo(need(song), tempo)
        if int(first) > int(last):
            msg = f"the first bar ({int(first)}) comes after the last ({int(last)})"
            raise GenerationError(msg)
        bars = list(range(int(first) - 1, int(last)))
        return generator.infill(song, int(track) - 1, bars, c["sampling"], takes=c["takes"], controls=c["controls"], **c["harmony"])

    def extend(song, c, tempo, _bars, new_bars):
        return generator.extend(generator.change_tempo(need(song), tempo), int(new_bars), c["sampling"], takes=c["takes"],
                                controls=c["controls"], **c["harmony"])

    def guarded_extend(song, temperature, genre, instrument, density, tempo, seed, bars, new_bars=settings.bars, top_p=1.0,
                       top_k=0, meter="4/4", scale=NO_SCALE, pitch_low=0, pitch_high=127, drum_kit="Standard", takes=1, chords="",
                       chord_rule="loose", free=False, session=None, request=None):
        return act(extend, (new_bars,), song, temperature, genre, instrument, density, tempo, seed, bars,
                   top_p, top_k, meter, scale, pitch_low, pitch_high, drum_kit, takes, (chords, chord_rule), session, request, free)

    for fn in (guarded_fill, guarded_extend, stop_running):
        fn.__annotations__ = {"request": gr.Request}

    def upload(song, file, tempo, drum_kit="Standard", session=None):  # tempo, drum_kit: the file's own are used
        session = kept(session)
        try:
            new, note = song_from_upload(file, settings)  # its own tempo and kit (the page follows: song_widgets)
            if note:
                gr.Warning(f"Uploaded file: {note}")
            try:
                session.uploaded_key = key_of_text(new.text, settings.grid)
            except MMMGenError:
                session.uploaded_key = None
            session.kit = None
            session.takes, session.take_audio = [], []
            return finish(session, song, new, None)
        except (MMMGenError, ValueError) as exc:
            return warn(exc, session)
        except Exception:
            return warn(None, session, "upload failed")

    def opening(session):
        """A new page starts with the ``--load`` piece."""
        return respond(opening_song, kept(session))

    def undo(song, session, redo: bool = False):
        session = kept(session)
        try:
            return respond(session.undo(song, redo), session)
        except MMMGenError as exc:
            return warn(exc, session)

    def redo(song, session):
        return undo(song, session, redo=True)

    def keep_take(song, take, session):
        session = kept(session)
        try:
            k = int(take or 1)
            if not 1 <= k <= len(session.takes):
                msg = f"no take {k} on offer ({len(session.takes)} takes)" if session.takes else "no takes on offer: set Takes above 1 first"
                raise GenerationError(msg)
            chosen = session.takes[k - 1]
            session.seed = str(chosen.seed)
            return finish(session, song, chosen.song, None)
        except (MMMGenError, ValueError) as exc:
            return warn(exc, session)

    def extras(session):
        """What the session knows beside the song: seed(s) used, uploaded key, the takes to play."""
        session = kept(session)
        n = len(session.takes)
        audios = [gr.update(value=session.take_audio[i] if i < n else None, visible=i < n) for i in range(MAX_APP_TAKES)]
        choice = gr.update(choices=[str(i) for i in range(1, n + 1)] or ["1"], value="1", visible=n > 1)
        return (session.seed, session.uploaded_key or "", choice, *audios)

    with gr.Blocks(title="mmmgen — multitrack music generator", analytics_enabled=False, delete_cache=cache_policy(settings)) as demo:
        gr.Markdown("# mmmgen\nBuild a piece one instrument at a time with a GPT-2 model trained on MMM text.")
        song_state = gr.State(None)
        session_state = gr.State(None, time_to_live=SESSION_TTL_S, delete_callback=close_session)
        with gr.Row():
            with gr.Column(scale=1):
                temperature = gr.Slider(0, 1, value=0.85, step=0.01, label="Temperature", elem_id="temperature")
                genre = gr.Dropdown([RANDOM_GENRE, *genres], value=RANDOM_GENRE, label="Genre", elem_id="genre")
                instrument = gr.Dropdown(instrument_choices(), value=MODEL_CHOICE, label="Instrument of the next track", elem_id="instrument")
                density = gr.Dropdown([AUTO_DENSITY, *map(str, range(settings.density_levels))], value=AUTO_DENSITY, label="Density level", elem_id="density")
                tempo = gr.Slider(*TEMPO_RANGE, value=120, step=1, label="Tempo (BPM)", elem_id="tempo")
                seed = gr.Number(value=None, precision=0, label="Seed (empty or 0: a fresh random seed each time)", elem_id="seed")
                bars = gr.Slider(1, max(MAX_LENGTH_BARS, settings.bars), value=settings.bars, step=1,
                                 label=f"Bars (trained on {settings.bars}; longer songs are written {settings.bars} bars at a time)", elem_id="bars")
                new_bars = gr.Slider(1, 64, value=settings.bars, step=1, label="New bars on every track (Continue)", elem_id="new_bars")
                with gr.Accordion("Sampling, meter, key and range", open=False):
                    top_p = gr.Slider(0.05, 1, value=1.0, step=0.01, label="Top-p (1: off)", elem_id="top_p")
                    top_k = gr.Slider(0, 100, value=0, step=1, label="Top-k (0: off)", elem_id="top_k")
                    meter = gr.Dropdown(meters, value="4/4" if "4/4" in meters else meters[0], label="Meter (for Start)", elem_id="meter")
                    scale = gr.Dropdown(scale_choices(), value=NO_SCALE, label="Scale lock of new notes (drums are free)", elem_id="scale")
                    with gr.Row():
                        pitch_low = gr.Number(value=0, precision=0, minimum=0, maximum=127, label="Lowest pitch", elem_id="pitch_low")
                        pitch_high = gr.Number(value=127, precision=0, minimum=0, maximum=127, label="Highest pitch", elem_id="pitch_high")
                    drum_kit = gr.Dropdown([*DRUM_KITS, SONG_KIT], value="Standard", label="Drum kit (rendering)", elem_id="drum_kit")
                takes = gr.Slider(1, MAX_APP_TAKES, value=1, step=1, label="Takes (several at once; play them, keep one)", elem_id="takes")
                chords, chord_rule = chord_widgets()
                free = gr.Checkbox(False, label="Free: new bars need not follow the song (each track's range, drums, density; its key)", elem_id="free")
                with gr.Group():
                    gr.Markdown("**Regenerate bars** of any track (the rest stays as it is)")
                    with gr.Row():
                        fill_track = gr.Number(value=1, precision=0, minimum=1, label="Track", elem_id="fill_track")
                        fill_first = gr.Number(value=1, precision=0, minimum=1, label="From bar", elem_id="fill_first")
                        fill_last = gr.Number(value=settings.bars, precision=0, minimum=1, label="To bar", elem_id="fill_last")
                    b_fill = gr.Button("Regenerate bars", elem_id="regenerate_bars")
                upload_box = gr.File(label=f"Start from a MIDI file (max 2 MB, {MAX_UPLOAD_BARS} bars)", file_types=[".mid", ".midi"], elem_id="upload")
            with gr.Column(scale=2):
                with gr.Row():
                    b_start = gr.Button("Start from scratch", variant="primary", elem_id="start")
                    b_add = gr.Button("Add instrument", elem_id="add")
                    b_remove = gr.Button("Remove last instrument", elem_id="remove_last")
                    b_regen = gr.Button("Regenerate last instrument", elem_id="regenerate_last")
                    b_tempo = gr.Button("Change tempo", elem_id="change_tempo")
                    b_extend = gr.Button("Continue", elem_id="extend")
                with gr.Row():
                    b_undo = gr.Button("Undo", elem_id="undo", size="sm")
                    b_redo = gr.Button("Redo", elem_id="redo", size="sm")
                    b_stop = gr.Button("Stop", elem_id="stop", variant="stop", size="sm")
                    seed_used = gr.Textbox(label="Seed used (type it into Seed to make it again)", elem_id="seed_used", interactive=False)
                    key_box = gr.Textbox(label="Key of the uploaded MIDI", elem_id="uploaded_key", interactive=False)
                with gr.Row():
                    take_audio = [gr.Audio(label=f"Take {i + 1}", type="filepath", interactive=False, visible=False, elem_id=f"take_{i + 1}") for i in range(MAX_APP_TAKES)]
                with gr.Row():
                    take_choice = gr.Radio(["1"], value="1", label="Take to keep", visible=False, elem_id="take_choice")
                    b_keep = gr.Button("Keep take", elem_id="keep_take", size="sm")
                audio = gr.Audio(label="Audio", type="filepath", elem_id="audio", interactive=False)
                pianoroll = gr.Image(label="Piano roll", type="filepath", elem_id="pianoroll", interactive=False)
                with gr.Row():
                    instruments = gr.Textbox(label="Instruments", lines=6, elem_id="instruments", interactive=False)
                    midi = gr.File(label="MIDI file", elem_id="midi", interactive=False)
                tokens = gr.Textbox(label="MMM text", lines=6, max_lines=12, elem_id="tokens", interactive=False)
                b_info = gr.Button("Session info", visible=False, elem_id="session_info")
        controls = [song_state, temperature, genre, instrument, density, tempo, seed, bars]
        extra = [top_p, top_k, meter, scale, pitch_low, pitch_high, drum_kit, takes, chords, chord_rule, free, session_state]
        outputs = [song_state, audio, midi, pianoroll, instruments, tokens, session_state]
        shown = [seed_used, key_box, take_choice, *take_audio]
        events = []
        for button, action in zip(
            (b_start, b_add, b_remove, b_regen, b_tempo), (start, add, remove_last, regenerate_last, change_tempo), strict=True
        ):
            events.append(button.click(guarded(action), [*controls, *extra], outputs, api_name=action.__name__, concurrency_id="model"))
        events.append(b_fill.click(guarded_fill, [*controls, fill_track, fill_first, fill_last, *extra], outputs, api_name="regenerate_bars", concurrency_id="model"))
        events.append(b_extend.click(guarded_extend, [*controls, new_bars, *extra], outputs, api_name="extend", concurrency_id="model"))
        events.append(upload_box.upload(upload, [song_state, upload_box, tempo, drum_kit, session_state], outputs, api_name="upload", concurrency_id="model"))
        events[-1].then(song_widgets, [song_state], [tempo, drum_kit], api_visibility="private")
        if opening_song is not None:
            demo.load(opening, [session_state], outputs, api_visibility="private").then(song_widgets, [song_state], [tempo, drum_kit], api_visibility="private")
        events.append(b_undo.click(undo, [song_state, session_state], outputs, api_name="undo", concurrency_id="model"))
        events.append(b_redo.click(redo, [song_state, session_state], outputs, api_name="redo", concurrency_id="model"))
        events.append(b_keep.click(keep_take, [song_state, take_choice, session_state], outputs, api_name="keep_take", concurrency_id="model"))
        for event in events:
            event.then(extras, [session_state], shown, api_visibility="private")
        b_info.click(extras, [session_state], shown, api_name="session_info")
        # queued actions are cancelled; a running generation stops at its next word (stop_running)
        b_stop.click(stop_running, None, None, cancels=events, queue=False, api_name="stop")
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency)
    demo.mmmgen_renderer = render  # keeps the temp folder alive as long as the app
    return demo


def chord_widgets():
    """The chord panel: a progression for the new notes and how strictly they follow it."""
    import gradio as gr

    with gr.Group():
        chords = gr.Textbox(label="Chords of new notes: Am F C G (a chord per bar), Am:2 F:2 (beats); empty: the song's own",
                            value="", placeholder="e.g. Am F C G", elem_id="chords")
        rule = gr.Radio(["loose", "strict", "off"], value="loose", label="Chord rule (loose: chord tones on beats; strict: only chord tones)",
                        elem_id="chord_rule")
    return chords, rule


def song_from_midi(file, generator: Generator, settings: AppSettings, tempo: float | None = None) -> Song:
    """Every bar of an uploaded MIDI file (up to ``MAX_UPLOAD_BARS``) as a song (its tracks become the song's)."""
    return song_from_upload(file, settings, tempo)[0]


def song_from_upload(file, settings: AppSettings, tempo: float | None = None) -> tuple[Song, str | None]:
    """``song_from_midi``, and what was cut from the file (None when nothing was). ``tempo`` None keeps
    the file's tempo map; its track names and drum kits are kept too (``Song.meta``)."""
    from mmmgen.data.prepare import load_score
    from mmmgen.generate.prompt import score_song

    path = Path(file if isinstance(file, str) else getattr(file, "name", ""))
    if not path.is_file():
        msg = "no file received"
        raise GenerationError(msg)
    if path.stat().st_size > MAX_UPLOAD_BYTES:
        msg = f"the file is larger than {MAX_UPLOAD_BYTES // 1024 // 1024} MB"
        raise GenerationError(msg)
    codec = {"bars": settings.bars, "grid": settings.grid}
    try:
        return score_song(load_score(path), {"codec": codec, "density_edges": settings.density_edges}, tempo, MAX_UPLOAD_BARS)
    except GenerationError as exc:
        msg = f"the file has {exc}"
        raise GenerationError(msg) from None


def kit_program(kit: str | None) -> int | None:
    """The GM2 program of a drum kit choice; None for ``SONG_KIT`` (the song's own kit)."""
    from mmmgen.render.gm import DRUM_KITS

    return None if kit == SONG_KIT else DRUM_KITS.get(kit, 0)


def song_widgets(song: Song | None):
    """The tempo slider and drum kit choice after a song came from a file: its tempo, and its own kit
    when it has drums (``gr.update`` each; nothing changes without a song)."""
    import gradio as gr

    if song is None:
        return gr.skip(), gr.skip()
    has_drums = song.meta is not None and any(t.inst == V.inst(0, True) for t in song.meta.tracks)
    tempo = min(max(round(song.tempo), TEMPO_RANGE[0]), TEMPO_RANGE[1])
    return gr.update(value=tempo), gr.update(value=SONG_KIT) if has_drums else gr.skip()


def load_song(path: str, settings: AppSettings) -> Song:
    """The piece of ``mmmgen app --load PATH``: MMM text (its first line) or a MIDI file (up to
    ``MAX_UPLOAD_BARS`` bars; its tempo map, track names and drum kits kept)."""
    from mmmgen.generate.prompt import prompt_song

    codec = {"bars": settings.bars, "grid": settings.grid}
    return prompt_song(path, {"codec": codec, "density_edges": settings.density_edges}, None, MAX_UPLOAD_BARS)


def offline_theme():
    """Gradio's default look with system fonts: the page loads nothing from the internet."""
    import gradio as gr

    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )


def serve(demo, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Launch the app locally (no share link, no analytics, offline theme)."""
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    return demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        theme=offline_theme(),
        max_file_size=MAX_UPLOAD_BYTES,
        prevent_thread_lock=not block,
        footer_links=["api"],
        quiet=not block,
    )

