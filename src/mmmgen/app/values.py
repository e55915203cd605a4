"""The app's settings and its widget values: the choices the page offers and how what is set on the page
becomes the arguments of a ``Generator`` call (sampling, controls, chords, meter, takes, drum kit).

Pure functions over plain values; nothing here knows Gradio.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import NamedTuple

from mmmgen.app_session import MAX_APP_TAKES, Session
from mmmgen.generate.sampling import GenerationError, Sampling
from mmmgen.generate.song import MAX_BARS, Generator, Song
from mmmgen.text import vocab as V

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


class Widgets(NamedTuple):
    """The values of the page's controls an action reads, named and ordered as the API's parameters."""

    temperature: float
    genre: str
    instrument: str
    density: str
    tempo: float
    seed: int | None
    bars: int
    top_p: float = 1.0
    top_k: int = 0
    meter: str = "4/4"
    scale: str = NO_SCALE
    pitch_low: int = 0
    pitch_high: int = 127
    drum_kit: str = "Standard"
    takes: int = 1
    chords: str = ""
    chord_rule: str = "loose"
    free: bool = False


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


def instrument_choices() -> list[str]:
    from mmmgen.render.gm import instrument_name

    return [MODEL_CHOICE, "Drums", *(instrument_name(p) for p in range(V.N_PROGRAMS))]


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
    if not text and chord_rule in (None, "", "loose"):  # the default: the song's own chords, if it has some
        return {"chords": None}
    return {"chords": text or None, "chord_rule": chord_rule or "loose"}


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


def action_controls(w: Widgets, session: Session) -> dict:
    """Every widget value an action reads -> the Generator arguments of the song operations
    (``parse_controls`` with the song-derived rules, controls, chords, meter and takes)."""
    from mmmgen.generate.follow import Follow

    c = parse_controls(w.temperature, w.genre, w.instrument, w.density, w.seed, w.top_p, w.top_k)
    c["follow"] = Follow(free=bool(w.free))  # the song-derived rules (generate/follow.py), off with "Free"
    c["controls"] = make_controls(w.scale, w.pitch_low, w.pitch_high, session)
    c["harmony"] = make_harmony(w.chords, w.chord_rule)
    c["meter"] = V.parse_time_signature(str(w.meter or "4/4")) or (4, 4)
    c["takes"] = min(int(w.takes), MAX_APP_TAKES) if w.takes not in (None, "") and int(w.takes) > 1 else None
    return c


def kit_program(kit: str | None) -> int | None:
    """The GM2 program of a drum kit choice; None for ``SONG_KIT`` (the song's own kit)."""
    from mmmgen.render.gm import DRUM_KITS

    return None if kit == SONG_KIT else DRUM_KITS.get(kit, 0)


def describe(song: Song) -> str:
    from mmmgen.render.gm import instrument_name

    return "\n".join(f"{i}. {instrument_name(p, d)}" for i, (p, d) in enumerate(song.instruments, 1))
