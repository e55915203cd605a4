"""The app's page, one function per panel. Each makes its widgets (inside the ``gr.Blocks`` being
built) and returns them by name: the name of a widget is its ``elem_id`` (the song and the session
are the states ``song`` and ``session``). ``page`` lays the panels out; ``app/__init__.py`` wires
their events.

Labels, defaults and elem_ids are the page's contract with its users, the API and the browser
tests: change them with care.
"""

from __future__ import annotations

from mmmgen.app.values import (
    AUTO_DENSITY,
    MAX_LENGTH_BARS,
    MAX_UPLOAD_BARS,
    MODEL_CHOICE,
    NO_SCALE,
    RANDOM_GENRE,
    SESSION_TTL_S,
    SONG_KIT,
    TEMPO_RANGE,
    AppSettings,
    instrument_choices,
    scale_choices,
)
from mmmgen.app_session import MAX_APP_TAKES, close_session

TITLE = "# mmmgen\nBuild a piece one instrument at a time with a GPT-2 model trained on MMM text."


def page(settings: AppSettings, genres: list[str], meters: list[str]) -> dict:
    """The whole page: settings on the left, buttons and the song on the right."""
    import gradio as gr

    gr.Markdown(TITLE)
    w = {"song": gr.State(None), "session": gr.State(None, time_to_live=SESSION_TTL_S, delete_callback=close_session)}
    with gr.Row():
        with gr.Column(scale=1):
            w |= controls_panel(settings, genres)
            w |= options_panel(meters)
            w |= rules_panel()
            w |= fill_panel(settings)
            w |= upload_panel()
        with gr.Column(scale=2):
            w |= action_buttons()
            w |= history_panel()
            w |= takes_panel()
            w |= song_panel()
    return w


def controls_panel(settings: AppSettings, genres: list[str]) -> dict:
    """The controls every action reads: temperature, genre, instrument, density, tempo, seed, length."""
    import gradio as gr

    densities = [AUTO_DENSITY, *map(str, range(settings.density_levels))]
    bars_label = f"Bars (trained on {settings.bars}; longer songs are written {settings.bars} bars at a time)"
    return {
        "temperature": gr.Slider(0, 1, value=0.85, step=0.01, label="Temperature", elem_id="temperature"),
        "genre": gr.Dropdown([RANDOM_GENRE, *genres], value=RANDOM_GENRE, label="Genre", elem_id="genre"),
        "instrument": gr.Dropdown(instrument_choices(), value=MODEL_CHOICE, label="Instrument of the next track", elem_id="instrument"),
        "density": gr.Dropdown(densities, value=AUTO_DENSITY, label="Density level", elem_id="density"),
        "tempo": gr.Slider(*TEMPO_RANGE, value=120, step=1, label="Tempo (BPM)", elem_id="tempo"),
        "seed": gr.Number(value=None, precision=0, label="Seed (empty or 0: a fresh random seed each time)", elem_id="seed"),
        "bars": gr.Slider(1, max(MAX_LENGTH_BARS, settings.bars), value=settings.bars, step=1, label=bars_label, elem_id="bars"),
        "new_bars": gr.Slider(1, 64, value=settings.bars, step=1, label="New bars on every track (Continue)", elem_id="new_bars"),
    }


def options_panel(meters: list[str]) -> dict:
    """Sampling, meter, key and range (folded): top-p/k, meter, scale lock, pitch range, drum kit."""
    import gradio as gr

    from mmmgen.render.gm import DRUM_KITS

    w = {}
    with gr.Accordion("Sampling, meter, key and range", open=False):
        w["top_p"] = gr.Slider(0.05, 1, value=1.0, step=0.01, label="Top-p (1: off)", elem_id="top_p")
        w["top_k"] = gr.Slider(0, 100, value=0, step=1, label="Top-k (0: off)", elem_id="top_k")
        w["meter"] = gr.Dropdown(meters, value="4/4" if "4/4" in meters else meters[0], label="Meter (for Start)", elem_id="meter")
        w["scale"] = gr.Dropdown(scale_choices(), value=NO_SCALE, label="Scale lock of new notes (drums are free)", elem_id="scale")
        with gr.Row():
            w["pitch_low"] = gr.Number(value=0, precision=0, minimum=0, maximum=127, label="Lowest pitch", elem_id="pitch_low")
            w["pitch_high"] = gr.Number(value=127, precision=0, minimum=0, maximum=127, label="Highest pitch", elem_id="pitch_high")
        w["drum_kit"] = gr.Dropdown([*DRUM_KITS, SONG_KIT], value="Standard", label="Drum kit (rendering)", elem_id="drum_kit")
    return w


def rules_panel() -> dict:
    """How many takes, the chords new notes follow, and Free (new bars need not follow the song)."""
    import gradio as gr

    takes = gr.Slider(1, MAX_APP_TAKES, value=1, step=1, label="Takes (several at once; play them, keep one)", elem_id="takes")
    chords, chord_rule = chord_widgets()
    free = gr.Checkbox(False, label="Free: new bars need not follow the song (each track's range, drums, density; its key)", elem_id="free")
    return {"takes": takes, "chords": chords, "chord_rule": chord_rule, "free": free}


def chord_widgets():
    """The chord panel: a progression for the new notes and how strictly they follow it."""
    import gradio as gr

    with gr.Group():
        chords = gr.Textbox(label="Chords of new notes: Am F C G (a chord per bar), Am:2 F:2 (beats); empty: the song's own",
                            value="", placeholder="e.g. Am F C G", elem_id="chords")
        rule = gr.Radio(["loose", "strict", "off"], value="loose", label="Chord rule (loose: chord tones on beats; strict: only chord tones)",
                        elem_id="chord_rule")
    return chords, rule


def fill_panel(settings: AppSettings) -> dict:
    """Regenerate bars of any track: the track, its first and last bar, the button."""
    import gradio as gr

    w = {}
    with gr.Group():
        gr.Markdown("**Regenerate bars** of any track (the rest stays as it is)")
        with gr.Row():
            w["fill_track"] = gr.Number(value=1, precision=0, minimum=1, label="Track", elem_id="fill_track")
            w["fill_first"] = gr.Number(value=1, precision=0, minimum=1, label="From bar", elem_id="fill_first")
            w["fill_last"] = gr.Number(value=settings.bars, precision=0, minimum=1, label="To bar", elem_id="fill_last")
        w["regenerate_bars"] = gr.Button("Regenerate bars", elem_id="regenerate_bars")
    return w


def upload_panel() -> dict:
    """Start from a MIDI file."""
    import gradio as gr

    label = f"Start from a MIDI file (max 2 MB, {MAX_UPLOAD_BARS} bars)"
    return {"upload": gr.File(label=label, file_types=[".mid", ".midi"], elem_id="upload")}


def action_buttons() -> dict:
    """The song operations: Start, Add, Remove last, Regenerate last, Change tempo, Continue."""
    import gradio as gr

    with gr.Row():
        return {
            "start": gr.Button("Start from scratch", variant="primary", elem_id="start"),
            "add": gr.Button("Add instrument", elem_id="add"),
            "remove_last": gr.Button("Remove last instrument", elem_id="remove_last"),
            "regenerate_last": gr.Button("Regenerate last instrument", elem_id="regenerate_last"),
            "change_tempo": gr.Button("Change tempo", elem_id="change_tempo"),
            "extend": gr.Button("Continue", elem_id="extend"),
        }


def history_panel() -> dict:
    """Undo, Redo, Stop, and what the session used: the seed(s), the uploaded file's key."""
    import gradio as gr

    with gr.Row():
        return {
            "undo": gr.Button("Undo", elem_id="undo", size="sm"),
            "redo": gr.Button("Redo", elem_id="redo", size="sm"),
            "stop": gr.Button("Stop", elem_id="stop", variant="stop", size="sm"),
            "seed_used": gr.Textbox(label="Seed used (type it into Seed to make it again)", elem_id="seed_used", interactive=False),
            "uploaded_key": gr.Textbox(label="Key of the uploaded MIDI", elem_id="uploaded_key", interactive=False),
        }


def takes_panel() -> dict:
    """The takes on offer (hidden until there are some) and the one to keep."""
    import gradio as gr

    w = {}
    with gr.Row():
        w["take_audio"] = [gr.Audio(label=f"Take {i + 1}", type="filepath", interactive=False, visible=False, elem_id=f"take_{i + 1}")
                           for i in range(MAX_APP_TAKES)]
    with gr.Row():
        w["take_choice"] = gr.Radio(["1"], value="1", label="Take to keep", visible=False, elem_id="take_choice")
        w["keep_take"] = gr.Button("Keep take", elem_id="keep_take", size="sm")
    return w


def song_panel() -> dict:
    """The song: audio, piano roll, instruments, MIDI file, MMM text (and the hidden Session info)."""
    import gradio as gr

    w = {
        "audio": gr.Audio(label="Audio", type="filepath", elem_id="audio", interactive=False),
        "pianoroll": gr.Image(label="Piano roll", type="filepath", elem_id="pianoroll", interactive=False),
    }
    with gr.Row():
        w["instruments"] = gr.Textbox(label="Instruments", lines=6, elem_id="instruments", interactive=False)
        w["midi"] = gr.File(label="MIDI file", elem_id="midi", interactive=False)
    w["tokens"] = gr.Textbox(label="MMM text", lines=6, max_lines=12, elem_id="tokens", interactive=False)
    w["session_info"] = gr.Button("Session info", visible=False, elem_id="session_info")
    return w
