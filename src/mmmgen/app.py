"""The web app: the tutorial's Gradio Space done properly (``mmmgen app``).

``build_app(generator, settings)`` returns a ``gr.Blocks``; the model is loaded once by the caller
and passed in (no module-level state). Each browser session keeps its own song in ``gr.State``.
Every action turns widget values into one ``Generator`` call, renders the song (audio, MIDI,
piano roll) and returns the outputs; an impossible action shows a warning and leaves the previous
results on the page.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from mmmgen.errors import MMMGenError
from mmmgen.generate.sampling import GenerationError, Sampling
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


class SongRenderer:
    """Writes a song's MIDI, audio and piano roll into a private temp folder, pruning old ones."""

    def __init__(self, grid: int, keep_s: float):
        self.grid, self.keep_s = grid, keep_s
        self._dir = tempfile.TemporaryDirectory(prefix="mmmgen-app-")  # removed at exit
        self.root = Path(self._dir.name)

    def __call__(self, song: Song) -> tuple[str, str, str]:
        from mmmgen.render.files import plot_pianoroll, render_audio, write_midi
        from mmmgen.text.decode import text_to_score

        self._prune()
        out = self.root / uuid.uuid4().hex
        out.mkdir()
        score = text_to_score(song.text, self.grid, tempo=song.tempo)
        midi = write_midi(score, out / "song.mid")
        audio = render_audio(score, out / "song.wav")
        roll = plot_pianoroll(score, out / "pianoroll.png")
        return str(audio), str(midi), str(roll)

    def _prune(self) -> None:
        cutoff = time.time() - self.keep_s
        for d in self.root.iterdir():
            if d.stat().st_mtime < cutoff:
                shutil.rmtree(d, ignore_errors=True)


def instrument_choices() -> list[str]:
    from mmmgen.render.gm import instrument_name

    return [MODEL_CHOICE, "Drums", *(instrument_name(p) for p in range(V.N_PROGRAMS))]


def parse_controls(temperature, genre, instrument, density, seed) -> dict:
    """Widget values -> Generator arguments. Seed 0 or empty means a fresh random seed."""
    from mmmgen.render.gm import program_from_name

    seed = int(seed) if seed not in (None, "") and int(seed) != 0 else None
    sampling = Sampling(temperature=max(float(temperature), 0.01), seed=seed)
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

    settings = settings or AppSettings()
    render = SongRenderer(settings.grid, settings.keep_renders_s)
    genres = settings.genres or generator.genres

    def respond(song: Song | None):
        if song is None:
            return (None, None, None, None, "", "")
        audio, midi, roll = render(song)
        return (song, audio, midi, roll, describe(song), song.text)

    def guarded(action):
        def run(song, temperature, genre, instrument, density, tempo, seed, bars):
            try:
                c = parse_controls(temperature, genre, instrument, density, seed)
                return respond(action(song, c, float(tempo), int(bars)))
            except (MMMGenError, ValueError) as exc:
                gr.Warning(str(exc))
            except Exception:  # never a stack trace on the page; the log has it
                log.exception("app action failed")
                gr.Warning("Something went wrong; the previous song is kept. See the server log.")
            return tuple(gr.skip() for _ in range(6))

        return run

    def need(song: Song | None) -> Song:
        if song is None or not song.tracks:
            msg = "Start from scratch (or upload a MIDI file) first."
            raise GenerationError(msg)
        return song

    def start(song, c, tempo, bars):
        return generator.start(c["genre"], n_bars=bars, tempo=tempo, instrument=c["instrument"], density=c["density"], sampling=c["sampling"])

    def add(song, c, tempo, bars):
        song = generator.change_tempo(need(song), tempo)
        new = c["instrument"] is None
        return generator.add_track(song, instrument=c["instrument"], density=c["density"], new_instrument=new, sampling=c["sampling"])

    def remove_last(song, c, tempo, bars):
        return generator.remove_last(need(song))

    def regenerate_last(song, c, tempo, bars):
        kwargs = {"density": c["density"], "sampling": c["sampling"]}
        if c["instrument"] is not None:
            kwargs["instrument"] = c["instrument"]
        return generator.regenerate_last(generator.change_tempo(need(song), tempo), **kwargs)

    def change_tempo(song, c, tempo, bars):
        return generator.change_tempo(need(song), tempo)

    def regenerate_bars(song, temperature, genre, instrument, density, tempo, seed, bars, track, first, last):
        def action(song, c, tempo, _bars):
            song = generator.change_tempo(need(song), tempo)
            if int(first) > int(last):
                msg = f"the first bar ({int(first)}) comes after the last ({int(last)})"
                raise GenerationError(msg)
            return generator.infill(song, int(track) - 1, list(range(int(first) - 1, int(last))), c["sampling"])

        return guarded(action)(song, temperature, genre, instrument, density, tempo, seed, bars)

    def extend(song, temperature, genre, instrument, density, tempo, seed, bars, new_bars=settings.bars):
        def action(song, c, tempo, _bars):
            return generator.extend(generator.change_tempo(need(song), tempo), int(new_bars), c["sampling"])

        return guarded(action)(song, temperature, genre, instrument, density, tempo, seed, bars)

    def upload(song, file, tempo):
        try:
            new, note = song_from_upload(file, settings, tempo)
            if note:
                gr.Warning(f"Uploaded file: {note}")
            return respond(new)
        except (MMMGenError, ValueError) as exc:
            gr.Warning(str(exc))
        except Exception:
            log.exception("upload failed")
            gr.Warning("Could not read that file; the previous song is kept.")
        return tuple(gr.skip() for _ in range(6))

    with gr.Blocks(title="mmmgen — multitrack music generator", analytics_enabled=False, delete_cache=(600, 1800)) as demo:
        gr.Markdown("# mmmgen\nBuild a piece one instrument at a time with a GPT-2 model trained on MMM text.")
        song_state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                temperature = gr.Slider(0, 1, value=0.85, step=0.01, label="Temperature", elem_id="temperature")
                genre = gr.Dropdown([RANDOM_GENRE, *genres], value=RANDOM_GENRE, label="Genre", elem_id="genre")
                instrument = gr.Dropdown(instrument_choices(), value=MODEL_CHOICE, label="Instrument of the next track", elem_id="instrument")
                density = gr.Dropdown([AUTO_DENSITY, *map(str, range(settings.density_levels))], value=AUTO_DENSITY, label="Density level", elem_id="density")
                tempo = gr.Slider(60, 180, value=120, step=1, label="Tempo (BPM)", elem_id="tempo")
                seed = gr.Number(value=None, precision=0, label="Seed (empty or 0: a fresh random seed each time)", elem_id="seed")
                bars = gr.Slider(1, max(MAX_LENGTH_BARS, settings.bars), value=settings.bars, step=1,
                                 label=f"Bars (trained on {settings.bars}; longer songs are written {settings.bars} bars at a time)", elem_id="bars")
                new_bars = gr.Slider(1, 64, value=settings.bars, step=1, label="New bars on every track (Continue)", elem_id="new_bars")
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
                audio = gr.Audio(label="Audio", type="filepath", elem_id="audio", interactive=False)
                pianoroll = gr.Image(label="Piano roll", type="filepath", elem_id="pianoroll", interactive=False)
                with gr.Row():
                    instruments = gr.Textbox(label="Instruments", lines=6, elem_id="instruments", interactive=False)
                    midi = gr.File(label="MIDI file", elem_id="midi", interactive=False)
                tokens = gr.Textbox(label="MMM text", lines=6, max_lines=12, elem_id="tokens", interactive=False)
        controls = [song_state, temperature, genre, instrument, density, tempo, seed, bars]
        outputs = [song_state, audio, midi, pianoroll, instruments, tokens]
        for button, action in zip(
            (b_start, b_add, b_remove, b_regen, b_tempo), (start, add, remove_last, regenerate_last, change_tempo), strict=True
        ):
            button.click(guarded(action), controls, outputs, api_name=action.__name__, concurrency_id="model")
        b_fill.click(regenerate_bars, [*controls, fill_track, fill_first, fill_last], outputs, api_name="regenerate_bars", concurrency_id="model")
        b_extend.click(extend, [*controls, new_bars], outputs, api_name="extend", concurrency_id="model")
        upload_box.upload(upload, [song_state, upload_box, tempo], outputs, api_name="upload", concurrency_id="model")
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency)
    demo.mmmgen_renderer = render  # keeps the temp folder alive as long as the app
    return demo


def song_from_midi(file, generator: Generator, settings: AppSettings, tempo: float) -> Song:
    """Every bar of an uploaded MIDI file (up to ``MAX_UPLOAD_BARS``) as a song (its tracks become the song's)."""
    return song_from_upload(file, settings, tempo)[0]


def song_from_upload(file, settings: AppSettings, tempo: float) -> tuple[Song, str | None]:
    """``song_from_midi``, and what was cut from the file (None when nothing was)."""
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

