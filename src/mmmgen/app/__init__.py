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

The package, by part: ``values.py`` (settings, choices, widget values -> Generator arguments),
``songs.py`` (songs from files), ``operations.py`` (one song operation per button),
``actions.py`` (running them for a session: history, takes, warnings, Stop; the API endpoints),
``panels.py`` (the page, one function per panel) and here ``build_app`` (panels + events), ``serve``.
"""

from __future__ import annotations

from mmmgen.app.actions import Actions, guarded, guarded_extend, guarded_fill, stop_endpoint
from mmmgen.app.operations import BUTTONS
from mmmgen.app.panels import chord_widgets, page
from mmmgen.app.songs import load_song, song_from_midi, song_from_upload, song_widgets
from mmmgen.app.values import (
    ACTIONS,
    AUTO_DENSITY,
    MAX_LENGTH_BARS,
    MAX_UPLOAD_BARS,
    MAX_UPLOAD_BYTES,
    MODEL_CHOICE,
    NO_SCALE,
    RANDOM_GENRE,
    SESSION_TTL_S,
    SONG_KIT,
    TEMPO_RANGE,
    UPLOAD_KEY,
    AppSettings,
    describe,
    fresh_seed,
    instrument_choices,
    kit_program,
    make_controls,
    make_harmony,
    meter_choices,
    parse_controls,
    scale_choices,
)
from mmmgen.app_session import (
    MAX_APP_TAKES,
    Session,
    SongRenderer,
    cache_policy,
    close_session,
    prune_gradio_cache,
)
from mmmgen.generate.song import Generator

__all__ = [
    "ACTIONS", "AUTO_DENSITY", "MAX_APP_TAKES", "MAX_LENGTH_BARS", "MAX_UPLOAD_BARS", "MAX_UPLOAD_BYTES", "MODEL_CHOICE",
    "NO_SCALE", "RANDOM_GENRE", "SESSION_TTL_S", "SONG_KIT", "TEMPO_RANGE", "UPLOAD_KEY",
    "AppSettings", "Session", "SongRenderer", "build_app", "cache_policy", "chord_widgets", "close_session", "describe",
    "fresh_seed", "instrument_choices", "kit_program", "load_song", "make_controls", "make_harmony", "meter_choices",
    "offline_theme", "parse_controls", "prune_gradio_cache", "scale_choices", "serve", "song_from_midi",
    "song_from_upload", "song_widgets",
]

COMMON = ("song", "temperature", "genre", "instrument", "density", "tempo", "seed", "bars")  # every action's first parameters
EXTRA = ("top_p", "top_k", "meter", "scale", "pitch_low", "pitch_high", "drum_kit", "takes", "chords", "chord_rule", "free", "session")
FILL = ("fill_track", "fill_first", "fill_last")  # Regenerate bars: between COMMON and EXTRA (Continue: new_bars)
OUTPUTS = ("song", "audio", "midi", "pianoroll", "instruments", "tokens", "session")


def build_app(generator: Generator, settings: AppSettings | None = None):
    """The Gradio Blocks app over one loaded generator."""
    import gradio as gr

    settings = settings or AppSettings()
    actions = Actions(generator, settings)
    with gr.Blocks(title="mmmgen — multitrack music generator", analytics_enabled=False, delete_cache=cache_policy(settings)) as demo:
        actions.demo = demo
        w = page(settings, settings.genres or generator.genres, meter_choices(generator))
        wire(demo, w, actions)
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency)
    demo.mmmgen_renderer = actions.render  # keeps the temp folder alive as long as the app
    return demo


def wire(demo, w: dict, actions: Actions) -> None:
    """The page's events: each button's endpoint (API name, parameters in order), then what follows it."""
    def pick(names):
        return [w[n] for n in names]

    common, extra, outputs = pick(COMMON), pick(EXTRA), pick(OUTPUTS)
    model = {"concurrency_id": "model"}  # the actions that run the model queue together
    events = [w[op.__name__].click(guarded(actions, op), [*common, *extra], outputs, api_name=op.__name__, **model) for op in BUTTONS]
    events.append(w["regenerate_bars"].click(guarded_fill(actions), [*common, *pick(FILL), *extra], outputs, api_name="regenerate_bars", **model))
    events.append(w["extend"].click(guarded_extend(actions), [*common, w["new_bars"], *extra], outputs, api_name="extend", **model))
    song_to_widgets = (song_widgets, [w["song"]], [w["tempo"], w["drum_kit"]])
    upload_in = pick(("song", "upload", "tempo", "drum_kit", "session"))
    events.append(w["upload"].upload(actions.upload, upload_in, outputs, api_name="upload", **model))
    events[-1].then(*song_to_widgets, api_visibility="private")
    if actions.opening_song is not None:
        demo.load(actions.opening, [w["session"]], outputs, api_visibility="private").then(*song_to_widgets, api_visibility="private")
    events.append(w["undo"].click(actions.undo, [w["song"], w["session"]], outputs, api_name="undo", **model))
    events.append(w["redo"].click(actions.redo, [w["song"], w["session"]], outputs, api_name="redo", **model))
    events.append(w["keep_take"].click(actions.keep_take, pick(("song", "take_choice", "session")), outputs, api_name="keep_take", **model))
    extras, shown = actions.extras, [w["seed_used"], w["uploaded_key"], w["take_choice"], *w["take_audio"]]  # one function: one queue
    for event in events:
        event.then(extras, [w["session"]], shown, api_visibility="private")
    w["session_info"].click(extras, [w["session"]], shown, api_name="session_info")
    # queued actions are cancelled; a running generation stops at its next word (Actions.stop)
    w["stop"].click(stop_endpoint(actions), None, None, cancels=events, queue=False, api_name="stop")


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
