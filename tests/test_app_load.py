"""The app keeps what a MIDI file says beyond its notes (tempo, names, drum kit) and opens with a piece (``--load``)."""

from __future__ import annotations

import os

import pytest
from symusic import Score, Tempo
from synth import make_score, write
from tiny import untrained_model

from mmmgen.app import (
    SONG_KIT,
    AppSettings,
    build_app,
    kit_program,
    load_song,
    song_from_upload,
    song_widgets,
)
from mmmgen.app_session import SongRenderer
from mmmgen.cli import main
from mmmgen.generate.song import Generator
from mmmgen.text import vocab as V

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def named_midi(path, qpm: float = 175.0):
    """4 bars: a named flute (program 73) and drums on the Brush kit (40) at ``qpm``, slowing to half."""
    flute = [(72 + q % 5, float(q), 1.0) for q in range(16)]
    drums = [(36 if q % 2 else 38, float(q), 0.25) for q in range(16)]
    score = make_score([(73, False, flute), (40, True, drums)])
    score.tracks[0].name, score.tracks[1].name = "Melody", "Drums of the file"
    score.tempos.clear()
    score.tempos.append(Tempo(0, qpm=qpm))
    score.tempos.append(Tempo(8 * score.tpq, qpm=qpm / 2))
    return write(score, path)


def test_an_upload_plays_at_its_own_tempo_with_its_names_and_kit(tmp_path):
    settings = AppSettings(bars=2)
    song, _ = song_from_upload(str(named_midi(tmp_path / "song.mid")), settings)  # no tempo given: the file's
    assert song.tempo == 175.0
    render = SongRenderer(settings.grid, 60)  # its folder lives as long as it
    _, midi, _ = render(song, kit_program(SONG_KIT))
    score = Score(midi)
    assert [(t.time / score.tpq, round(t.qpm, 2)) for t in score.tempos] == [(0.0, 175.0), (8.0, 87.5)]
    assert [(t.name, t.program, t.is_drum) for t in score.tracks] == [("Melody", 73, False), ("Drums of the file", 40, True)]
    _, midi, _ = render(song, kit_program("TR-808"))  # a kit chosen in the app wins
    assert [t.program for t in Score(midi).tracks] == [73, 25]
    tempo, kit = song_widgets(song)  # the page follows the file: its tempo, its kit
    assert tempo["value"] == 175 and kit["value"] == SONG_KIT
    assert kit_program("Standard") == 0 and kit_program(SONG_KIT) is None


def test_load_opens_every_new_page_with_the_piece(tmp_path):
    midi = named_midi(tmp_path / "song.mid", qpm=90)
    settings = AppSettings(bars=2, load=str(midi))
    assert load_song(str(midi), settings).meta.tracks[0].name == "Melody"
    text = tmp_path / "piece.txt"
    text.write_text(load_song(str(midi), settings).text + "\n")
    assert load_song(str(text), settings).tracks == load_song(str(midi), settings).tracks
    demo = build_app(Generator(*untrained_model()), settings)
    opening = [f.fn for f in demo.fns.values() if any(event == "load" for _, event in f.targets)]
    assert len(opening) == 1
    song, audio, midi_out, roll, instruments, tokens, _ = opening[0](None)
    assert song.tempo == 90 and tokens == song.text and V.TRACK_START in tokens
    assert Score(midi_out).tracks[0].name == "Melody" and audio and roll
    assert instruments.splitlines()[0].startswith("1.")
    plain = build_app(Generator(*untrained_model()), AppSettings(bars=2))  # without --load: an empty page, as before
    assert not [f for f in plain.fns.values() if any(event == "load" for _, event in f.targets)]


def test_app_load_of_a_missing_piece_fails_before_serving(tmp_path, capsys):
    assert main(["app", "--model", "nothing-here", "--load", str(tmp_path / "x.txt")]) == 2
    from mmmgen.model.run import default_model_dir

    if default_model_dir() is None:
        pytest.skip("no shipped model in this checkout")
    capsys.readouterr()
    assert main(["app", "--load", str(tmp_path / "missing.txt")]) == 2
    assert f"prompt not found: {tmp_path / 'missing.txt'}" in capsys.readouterr().err
