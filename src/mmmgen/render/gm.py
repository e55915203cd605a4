"""General MIDI names: the 128 programs, the percussion keys, and the way back from a name.

``instrument_name(program, is_drum)`` labels a track (legends, reports, the app);
``program_from_name`` reads what a person types (``--instrument 'Acoustic Bass'``, ``33``,
``DRUMS``) and answers ``(program, is_drum)``, or raises ``ValueError`` listing close names.
"""

from __future__ import annotations

import difflib
import re

GM_PROGRAMS: tuple[str, ...] = (
    # Piano
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    # Chromatic Percussion
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone",
    "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    # Organ
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ",
    "Reed Organ", "Accordion", "Harmonica", "Tango Accordion",
    # Guitar
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)", "Electric Guitar (clean)",
    "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics",
    # Bass
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass",
    "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    # Strings
    "Violin", "Viola", "Cello", "Contrabass",
    "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    # Ensemble
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2",
    "Choir Aahs", "Voice Oohs", "Synth Voice", "Orchestra Hit",
    # Brass
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet",
    "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2",
    # Reed
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax",
    "Oboe", "English Horn", "Bassoon", "Clarinet",
    # Pipe
    "Piccolo", "Flute", "Recorder", "Pan Flute",
    "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    # Synth Lead
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)",
    "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    # Synth Pad
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)",
    "Pad 5 (bowed)", "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    # Synth Effects
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)",
    "FX 5 (brightness)", "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    # Ethnic
    "Sitar", "Banjo", "Shamisen", "Koto",
    "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    # Percussive
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock",
    "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    # Sound Effects
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet",
    "Telephone Ring", "Helicopter", "Applause", "Gunshot",
)  # fmt: skip

GM_FAMILIES: tuple[str, ...] = (
    "Piano", "Chromatic Percussion", "Organ", "Guitar", "Bass", "Strings", "Ensemble", "Brass",
    "Reed", "Pipe", "Synth Lead", "Synth Pad", "Synth Effects", "Ethnic", "Percussive", "Sound Effects",
)  # fmt: skip

DRUMS_NAME = "Drums"

GM_DRUM_KEYS: dict[int, str] = {
    35: "Acoustic Bass Drum", 36: "Bass Drum 1", 37: "Side Stick", 38: "Acoustic Snare",
    39: "Hand Clap", 40: "Electric Snare", 41: "Low Floor Tom", 42: "Closed Hi-Hat",
    43: "High Floor Tom", 44: "Pedal Hi-Hat", 45: "Low Tom", 46: "Open Hi-Hat",
    47: "Low-Mid Tom", 48: "Hi-Mid Tom", 49: "Crash Cymbal 1", 50: "High Tom",
    51: "Ride Cymbal 1", 52: "Chinese Cymbal", 53: "Ride Bell", 54: "Tambourine",
    55: "Splash Cymbal", 56: "Cowbell", 57: "Crash Cymbal 2", 58: "Vibraslap",
    59: "Ride Cymbal 2", 60: "Hi Bongo", 61: "Low Bongo", 62: "Mute Hi Conga",
    63: "Open Hi Conga", 64: "Low Conga", 65: "High Timbale", 66: "Low Timbale",
    67: "High Agogo", 68: "Low Agogo", 69: "Cabasa", 70: "Maracas",
    71: "Short Whistle", 72: "Long Whistle", 73: "Short Guiro", 74: "Long Guiro",
    75: "Claves", 76: "Hi Wood Block", 77: "Low Wood Block", 78: "Mute Cuica",
    79: "Open Cuica", 80: "Mute Triangle", 81: "Open Triangle",
}  # fmt: skip

_DRUM_ALIASES = {"DRUMS", "DRUM", "DRUMKIT", "DRUMSET", "PERCUSSION", "STANDARDKIT", "INSTDRUMS"}
_NOT_ALNUM = re.compile(r"[^A-Z0-9]+")


def instrument_name(program: int, is_drum: bool = False) -> str:
    """The GM name of a program (0-based), or ``'Drums'`` for a percussion track."""
    if is_drum:
        return DRUMS_NAME
    if not 0 <= int(program) < len(GM_PROGRAMS):
        msg = f"GM programs are 0-127, not {program}"
        raise ValueError(msg)
    return GM_PROGRAMS[int(program)]


def family_name(program: int) -> str:
    """The GM family (``'Bass'``, ``'Strings'``, ...) of a program (0-based)."""
    instrument_name(program)  # range check
    return GM_FAMILIES[int(program) // 8]


def drum_name(key: int) -> str:
    """The GM percussion name of a key on channel 10 (``'Closed Hi-Hat'``), else ``'Key n'``."""
    return GM_DRUM_KEYS.get(int(key), f"Key {int(key)}")


def _norm(text: str) -> str:
    return _NOT_ALNUM.sub("", text.upper())


_BY_NORM = {_norm(name): i for i, name in enumerate(GM_PROGRAMS)}


def program_from_name(name: str | int) -> tuple[int, bool]:
    """``(program, is_drum)`` for a GM name, a program number or ``DRUMS``.

    Case, spaces and punctuation are ignored (``'acoustic bass'``, ``'Electric_Piano_1'``); a
    unique part of a name is enough (``'harpsi'``); numbers are 0-based programs 0-127; ``DRUMS``
    (or ``drum kit``, ``percussion``, ``INST=DRUMS``) means the percussion channel. ``INST=n``
    words are read too. Anything else raises ``ValueError`` naming close matches.
    """
    if isinstance(name, bool):
        msg = f"not an instrument: {name!r}"
        raise ValueError(msg)
    if isinstance(name, int):
        instrument_name(name)
        return int(name), False
    text = str(name).strip()
    if text.upper().startswith("INST="):
        text = text[5:]
    key = _norm(text)
    if key in _DRUM_ALIASES:
        return 0, True
    if text.isdigit():
        instrument_name(int(text))
        return int(text), False
    if not key:
        msg = "empty instrument name"
        raise ValueError(msg)
    if key in _BY_NORM:
        return _BY_NORM[key], False
    partial = [i for n, i in _BY_NORM.items() if key in n]
    if len(partial) == 1:
        return partial[0], False
    candidates = [GM_PROGRAMS[i] for i in partial]
    close = difflib.get_close_matches(key, list(_BY_NORM), n=5, cutoff=0.6)
    candidates += [GM_PROGRAMS[_BY_NORM[c]] for c in close if GM_PROGRAMS[_BY_NORM[c]] not in candidates]
    if candidates:
        shown = ", ".join(repr(c) for c in candidates[:8])
        more = f" (+{len(candidates) - 8} more)" if len(candidates) > 8 else ""
        msg = f"unknown or ambiguous GM instrument {name!r}; did you mean {shown}{more}?"
    else:
        msg = f"unknown GM instrument {name!r}; use a GM name (e.g. 'Acoustic Grand Piano'), a program 0-127 or DRUMS"
    raise ValueError(msg)


# General MIDI 2 drum kits: the program number of a drum track (channel 10) picks the kit; FluidSynth
# plays bank 128, preset = program, from the SoundFont (FluidR3_GM and TimGM6mb have these; a kit a
# SoundFont lacks falls back to Standard). GM2's SFX kit (56) is left out: FluidR3_GM has none.
DRUM_KITS = {"Standard": 0, "Room": 8, "Power": 16, "Electronic": 24, "TR-808": 25, "Jazz": 32, "Brush": 40, "Orchestra": 48}
