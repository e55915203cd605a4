"""The model shipped with the package: small enough, documented, and usable without --model."""

from __future__ import annotations

import json

import pytest
from conftest import one_thread

from mmmgen.cli import main
from mmmgen.generate.sampling import Sampling
from mmmgen.generate.song import generate_song
from mmmgen.model.evaluate import track_problem
from mmmgen.model.run import default_model_dir, find_run, generator_from_run
from mmmgen.text.decode import text_to_piece


@pytest.fixture(scope="module")
def shipped():
    path = default_model_dir()
    assert path is not None, "the default model is missing from src/mmmgen/resources/default_model (make model)"
    return path


def test_shipped_model_is_small_and_explains_itself(shipped):
    assert sum(p.stat().st_size for p in shipped.iterdir()) <= 25e6
    names = {p.name for p in shipped.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "mmmgen.json", "README.md", "metrics.json", "evaluation.json"} <= names
    card = (shipped / "README.md").read_text()
    assert "## Evaluation" in card and "bits per note" in card.lower()
    settings = json.loads((shipped / "mmmgen.json").read_text())
    assert {"BACH", "PALESTRINA", "MONTEVERDI", "CLASSICAL", "FOLK", "CELTIC"} <= set(settings["genre_labels"])


def test_shipped_model_knows_drums_bands_and_chords_and_credits_its_data(shipped):
    from mmmgen.data.open_corpora import OPEN
    from mmmgen.text import vocab as V

    settings = json.loads((shipped / "mmmgen.json").read_text())
    assert {"DRUMS", "ROCK", "STANDARDS"} <= set(settings["genre_labels"])  # the open collections (v2)
    assert settings["codec"]["chords"] and V.chord_track_inst() in json.loads((shipped / "tokenizer.json").read_text())["model"]["vocab"]
    card = (shipped / "README.md").read_text()
    for name in ("GROOVE", "LMD-BEATLES", "OPENEWLD"):  # licence and attribution of every collection trained on
        assert OPEN[name].licence in card and OPEN[name].attribution.split(",")[0] in card
    assert "NOTTINGHAM" not in settings["genre_labels"] and "FOLK" in settings["genre_labels"]


def test_the_previous_default_stays_loadable_by_name(shipped):
    from mmmgen.data.prepare import shipped_model_path

    v1 = shipped_model_path("default-v1")
    assert (v1 / "model.safetensors").is_file() and find_run("default-v1") == v1
    generator, settings = generator_from_run(v1)
    with one_thread():
        song = generate_song(generator, tracks=1, genre="BACH", n_bars=2, sampling=Sampling(seed=1))
    assert track_problem(song.header, song.tracks[0], 2, settings["codec"]["grid"]) is None
    assert "DRUMS" not in settings["genre_labels"]  # v1: music21 only


def test_shipped_model_generates_a_valid_four_track_piece(shipped):
    assert find_run(None) == shipped
    generator, settings = generator_from_run(shipped)
    bars, grid = settings["codec"]["bars"], settings["codec"]["grid"]
    with one_thread():
        song = generate_song(generator, tracks=4, genre="BACH", n_bars=bars, sampling=Sampling(temperature=0.85, seed=3))
    assert len(song.tracks) == 4
    assert [track_problem(song.header, t, bars, grid) for t in song.tracks] == [None] * 4
    piece = text_to_piece(song.text, grid, strict=True)
    assert len({(t.program, t.is_drum) for t in piece.tracks}) == 4  # the model picks a new instrument each time


def test_generate_needs_no_model_flag(shipped, tmp_path):
    with one_thread():
        assert main(["generate", "--out", str(tmp_path), "--tracks", "1", "--format", "txt,mid", "--seed", "1"]) == 0
    assert (tmp_path / "piece.mid").stat().st_size > 0
    assert text_to_piece((tmp_path / "piece.txt").read_text().strip(), 12).tracks
