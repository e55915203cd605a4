"""The app's song operations: one ``Generator`` call per button (Start, Add, Remove, Regenerate last,
Change tempo, Regenerate bars, Continue).

Each takes the generator, the song on the page (None before Start), the Generator arguments
``c`` of ``values.action_controls``, the tempo and the length in bars, then what the button adds
(the bars to regenerate, the new bars of Continue). Its name is the button's API endpoint.
"""

from __future__ import annotations

from mmmgen.generate.sampling import GenerationError
from mmmgen.generate.song import Generator, Song


def need(song: Song | None) -> Song:
    """The song on the page; an action on an empty page is an error."""
    if song is None or not song.tracks:
        msg = "Start from scratch (or upload a MIDI file) first."
        raise GenerationError(msg)
    return song


def start(generator: Generator, song, c, tempo, bars):
    return generator.start(
        c["genre"], time_signature=c["meter"], n_bars=bars, tempo=tempo, takes=c["takes"],
        instrument=c["instrument"], density=c["density"], sampling=c["sampling"], controls=c["controls"], **c["harmony"],
    )


def add(generator: Generator, song, c, tempo, bars):
    song = generator.change_tempo(need(song), tempo)
    new = c["instrument"] is None
    return generator.add_track(
        song, instrument=c["instrument"], density=c["density"], new_instrument=new, sampling=c["sampling"],
        takes=c["takes"], controls=c["controls"], follow=c["follow"], **c["harmony"],
    )


def remove_last(generator: Generator, song, c, tempo, bars):
    return generator.remove_last(need(song))


def regenerate_last(generator: Generator, song, c, tempo, bars):
    kwargs = {"density": c["density"], "sampling": c["sampling"], "takes": c["takes"], "controls": c["controls"], "follow": c["follow"], **c["harmony"]}
    if c["instrument"] is not None:
        kwargs["instrument"] = c["instrument"]
    return generator.regenerate_last(generator.change_tempo(need(song), tempo), **kwargs)


def change_tempo(generator: Generator, song, c, tempo, bars):
    return generator.change_tempo(need(song), tempo)


def regenerate_bars(generator: Generator, song, c, tempo, _bars, track, first, last):
    song = generator.change_tempo(need(song), tempo)
    if int(first) > int(last):
        msg = f"the first bar ({int(first)}) comes after the last ({int(last)})"
        raise GenerationError(msg)
    bars = list(range(int(first) - 1, int(last)))
    return generator.infill(song, int(track) - 1, bars, c["sampling"], takes=c["takes"], controls=c["controls"], **c["harmony"])


def extend(generator: Generator, song, c, tempo, _bars, new_bars):
    return generator.extend(generator.change_tempo(need(song), tempo), int(new_bars), c["sampling"], takes=c["takes"],
                            controls=c["controls"], **c["harmony"])


BUTTONS = (start, add, remove_last, regenerate_last, change_tempo)  # the buttons that read only the common controls
UNSAMPLED = (remove_last, change_tempo)  # no seed is drawn for these: the seed shown stays
