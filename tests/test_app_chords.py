"""The app's chord panel through its API: a progression for Start, Add and Continue; bad chords warn."""

from __future__ import annotations

import os
import socket

import pytest
from tiny import untrained_model

from mmmgen.app import AppSettings, build_app, make_harmony, serve
from mmmgen.generate.song import Generator, Song
from mmmgen.text import vocab as V
from mmmgen.text.chords import ChordError

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
CONTROLS = {"temperature": 0.9, "genre": "POP", "instrument": "Model's choice", "density": "auto", "tempo": 120, "seed": 3, "bars": 2}
EXTRA = {"top_p": 1.0, "top_k": 0, "meter": "4/4", "scale": "off", "pitch_low": 0, "pitch_high": 127, "drum_kit": "Standard", "takes": 1}


@pytest.fixture(scope="module")
def app_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_app(Generator(*untrained_model()), AppSettings(bars=2, concurrency=1, queue_size=8))
    serve(demo, port=port, block=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_the_chord_widgets_read_a_progression():
    assert make_harmony("", "loose") == {"chords": None}  # the default: the song's own chords, if any
    assert make_harmony("", "strict") == {"chords": None, "chord_rule": "strict"}
    assert make_harmony(" Am F ", "strict") == {"chords": "Am F", "chord_rule": "strict"}
    with pytest.raises(ChordError):
        make_harmony("Am Xm", "loose")


def test_start_add_and_continue_over_chords(app_url):
    from gradio_client import Client

    c = Client(app_url, verbose=False)
    *_, roll, _instruments, tokens = c.predict(*CONTROLS.values(), *EXTRA.values(), "Am F", "strict", api_name="/start")
    song = Song.from_text(tokens)
    assert tokens.split()[4] == V.chord_track_inst() and [s.chord.label for s in song.chords] == ["A:min", "F:maj"]
    assert roll.endswith(".png")
    *_, tokens = c.predict(*CONTROLS.values(), *EXTRA.values(), "", "strict", api_name="/add")  # the song's own chords
    assert len(Song.from_text(tokens).tracks) == 2 and Song.from_text(tokens).chords == song.chords
    *_, tokens = c.predict(*CONTROLS.values(), 2, *EXTRA.values(), "G7", "loose", api_name="/extend")
    assert [s.chord.label for s in Song.from_text(tokens).chords] == ["A:min", "F:maj", "G:7"]  # merged in the text
    *_, after = c.predict(*CONTROLS.values(), *EXTRA.values(), "Am Hx", "loose", api_name="/add")  # a warning: the song is kept
    assert after == {"__type__": "update"}
