"""``mmmgen evaluate``: statistics on hand-made pieces, then likelihood/validity/OA on the debug run."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from synth import make_score, random_score, write

from mmmgen.cli import main
from mmmgen.config import EvaluateConfig
from mmmgen.model.evaluate import EvaluateError, evaluate, generate_pieces, write_card
from mmmgen.model.stats import (
    FEATURES,
    PieceNotes,
    compare_sets,
    histogram_overlap,
    inter_onset_interval,
    kde_overlap,
    note_length_histogram,
    notes_per_bar,
    pitch_class_histogram,
    pitch_range,
    polyphony,
)


def melody(pitches, length=1.0, drum=False):
    """Consecutive notes of ``length`` quarters: rows (onset, duration, pitch, is_drum)."""
    return [(i * length, length, p, float(drum)) for i, p in enumerate(pitches)]


def chords(pitches, count, length):
    return [(i * length, length, p, 0.0) for i in range(count) for p in pitches]


# --- statistics on hand-made pieces --------------------------------------------------------------
def test_features_of_a_known_piece():
    notes = PieceNotes(melody([60, 67, 72, 64]) + melody([30] * 8, 0.5, drum=True), n_bars=2).notes
    assert pitch_range(notes) == 12  # the drum's 30 is left out
    assert notes_per_bar(notes, 2) == 6
    assert inter_onset_interval(notes) == 0.5  # the drums play eighths
    hist = pitch_class_histogram(notes)
    assert hist[0] == 0.5 and hist[7] == 0.25 and hist[4] == 0.25
    assert note_length_histogram(notes)[2] == 1.0  # all quarters (the drum eighths are left out)
    lengths = note_length_histogram(PieceNotes([(0, 0.75, 60, 0), (1, 1 / 3, 60, 0), (2, 5.0, 62, 0)], 1).notes)
    assert lengths[7] == lengths[11] == lengths[0] == pytest.approx(1 / 3)  # dotted eighth, eighth triplet, whole


def test_polyphony_and_empty_pieces():
    assert polyphony(PieceNotes(chords([60, 64, 67], 4, 1.0), 1).notes) == 3.0
    melody_and_bass = melody([72, 74, 76, 77]) + melody([48, 43], 2.0)
    assert polyphony(PieceNotes(melody_and_bass, 1).notes) == 2.0
    gaps = [(0, 1, 60, 0), (2, 1, 62, 0), (2, 0.5, 36, 1)]  # silence between is not counted; drums are not
    assert polyphony(PieceNotes(gaps, 1).notes) == 1.0
    half = [(0, 2, 60, 0), (0, 1, 64, 0)]
    assert polyphony(PieceNotes(half, 1).notes) == 1.5
    drums_only = PieceNotes(melody([36, 38], drum=True), 1).notes
    assert math.isnan(pitch_range(drums_only)) and math.isnan(polyphony(drums_only))
    assert pitch_class_histogram(drums_only) is None and note_length_histogram(drums_only) is None


def quiet(k: int) -> PieceNotes:
    """A slow melody on C and E: range 4, 4 notes per bar, IOI 1, polyphony 1, quarters."""
    return PieceNotes(melody([60, 64] * 2 * (k + 1)), k + 1)


def busy(k: int) -> PieceNotes:
    """Sixteenth chords on F#, A, F#: range 24, 48 notes per bar, IOI 1/4, polyphony 3, sixteenths."""
    return PieceNotes(chords([66, 69, 90], 16 * (k + 1), 0.25), k + 1)


def varied(k: int) -> PieceNotes:
    rng = np.random.default_rng(k)
    onsets = np.cumsum(rng.choice([0.5, 1, 1.5], 8 + k))
    notes = [(t, float(rng.choice([0.5, 1, 2])), int(rng.integers(40, 90)), 0.0) for t in onsets]
    return PieceNotes(notes + melody([36] * 4, drum=True), 2 + k % 3)


def test_identical_sets_overlap_one_and_disjoint_sets_zero():
    for pieces in ([quiet(k) for k in range(3)], [varied(k) for k in range(20)], [quiet(0)]):
        same = compare_sets(pieces, list(pieces))
        assert same["mean_oa"] == pytest.approx(1.0, abs=1e-6)
        assert all(f["oa"] == pytest.approx(1.0, abs=1e-6) for f in same["features"].values())
    apart = compare_sets([quiet(k) for k in range(3)], [busy(k) for k in range(4)])
    assert set(apart["features"]) == set(FEATURES)
    assert all(f["oa"] == pytest.approx(0.0, abs=1e-6) for f in apart["features"].values())
    assert apart["features"]["pitch_range"]["reference"]["mean"] == 24
    assert kde_overlap([10, 12, 14], [40, 42, 44]) < 1e-6
    assert math.isnan(kde_overlap([1, 2, 3], [])) and math.isnan(histogram_overlap([None], [np.eye(12)[0]]))
    assert histogram_overlap([np.eye(12)[0]], [np.eye(12)[5], None]) == 0.0


def test_overlap_is_between_zero_and_one_and_symmetric():
    gen, ref = [varied(k) for k in range(8)], [varied(k) for k in range(8, 40)]
    result = compare_sets(gen, ref)
    for f in result["features"].values():
        assert 0.0 < f["oa"] < 1.0
    assert compare_sets(ref, gen)["mean_oa"] == pytest.approx(result["mean_oa"])
    half = compare_sets([quiet(0), busy(0)], [quiet(0)])  # half of one set matches the other
    assert half["features"]["pitch_class_histogram"]["oa"] == pytest.approx(0.5)


# --- the library on the debug run ----------------------------------------------------------------
def test_evaluate_on_the_debug_run(debug_run, tiny_dataset, tmp_path):
    out = tmp_path / "eval.json"
    results = evaluate(EvaluateConfig(model=str(debug_run), dataset=str(tiny_dataset), samples=2, tracks=2, bars=2, out=str(out), free_samples=1))
    lk = results["likelihood"]
    assert lk["windows"] > 0 and lk["tokens"] > lk["notes"] > 0 and lk["unknown_words"] == 0
    assert math.isfinite(lk["loss_per_token"]) and lk["perplexity"] == pytest.approx(math.exp(lk["loss_per_token"]))
    assert lk["bits_per_note"] == pytest.approx(lk["loss_per_note"] / math.log(2))
    trained = json.loads((debug_run / "metrics.json").read_text())  # the same evaluation as at the end of training
    assert lk["loss_per_token"] == pytest.approx(trained["eval_loss"], rel=1e-4)
    assert results["validity"] == {"pieces": 2, "tracks": 4, "valid_tracks": 4, "validity": 1.0, "failures": {}}
    stats = results["statistics"]
    assert stats["generated_pieces"] == 2 and stats["reference_pieces"] == lk["windows"]
    assert all(0.0 <= f["oa"] <= 1.0 for f in stats["features"].values()) and 0.0 <= stats["mean_oa"] <= 1.0
    assert json.loads(out.read_text())["likelihood"]["notes"] == lk["notes"]
    assert results["free_validity"]["tracks"] == 2


def test_untrained_model_makes_only_valid_tracks():
    from tiny import untrained_model

    from mmmgen.generate.sampling import Sampling
    from mmmgen.generate.song import Generator

    songs, validity = generate_pieces(Generator(*untrained_model()), samples=2, tracks=2, n_bars=2, sampling=Sampling(seed=3))
    assert validity["validity"] == 1.0 and validity["valid_tracks"] == 4
    assert [len(s.tracks) for s in songs] == [2, 2]


def test_unconstrained_generation_is_counted_the_tutorials_way():
    from tiny import untrained_model

    from mmmgen.model.evaluate import free_pieces

    model, tokenizer = untrained_model()[:2]
    v = free_pieces(model, tokenizer, samples=2, tracks=2, n_bars=2, seed=1, max_new_tokens=40)
    assert v["pieces"] == 2 and v["tracks"] == 4 and 0 <= v["valid_tracks"] <= 4
    assert v["valid_tracks"] + sum(v["failures"].values()) == 4
    # a random-weight model rarely writes a valid 2-bar track within 40 words: the grammar is not free
    assert v["validity"] < 1.0 and v["failures"]


def test_model_card_section_is_replaced_not_repeated(tmp_path):
    results = {"model": "run", "device": "cpu", "data": {"source": "dataset", "path": "d", "windows": 3},
               "likelihood": {"loss_per_token": 1.0, "perplexity": math.e, "loss_per_note": 2.0, "bits_per_note": 2.885,
                              "tokens": 10, "notes": 5, "windows": 3}}
    (tmp_path / "README.md").write_text("# Model\n\n## Metrics\nx\n\n## Use\ncode\n")
    write_card(tmp_path, results)
    write_card(tmp_path, {**results, "likelihood": {**results["likelihood"], "bits_per_note": 9.5}})
    card = (tmp_path / "README.md").read_text()
    assert card.count("## Evaluation") == 1 and "9.5" in card and "2.885" not in card
    assert card.index("## Metrics") < card.index("## Evaluation") < card.index("## Use") and card.endswith("code\n")
    assert json.loads((tmp_path / "evaluation.json").read_text())["likelihood"]["bits_per_note"] == 9.5


# --- the command ---------------------------------------------------------------------------------
def test_cli_on_the_dataset_writes_json_and_card(debug_run, tiny_dataset, tmp_path, capsys):
    run = shutil.copytree(debug_run, tmp_path / "run", ignore=shutil.ignore_patterns("checkpoint-*"))
    out = tmp_path / "results.json"
    args = ["evaluate", "--model", str(run), "--dataset", str(tiny_dataset), "--samples", "1", "--tracks", "1", "--bars", "2"]
    assert main([*args, "--out", str(out), "--write-card"]) == 0
    printed = capsys.readouterr().out
    assert "bits per note" in printed and "pitch_class_histogram" in printed
    results = json.loads(out.read_text())
    assert set(results) >= {"model", "data", "likelihood", "validity", "statistics", "settings"}
    assert results["validity"]["validity"] == 1.0
    assert "## Evaluation" in (run / "README.md").read_text() and (run / "evaluation.json").is_file()


def test_cli_on_a_midi_folder_counts_bad_files(debug_run, tmp_path, capsys):
    midi = tmp_path / "midi"
    for i in range(3):
        write(make_score([(0, False, [(60 + (i + q) % 12, q, 1.0) for q in range(16)]), (33, False, [(40, 2.0 * h, 2.0) for h in range(8)])]), midi / f"{i}.mid")
    write(random_score(9), midi / "sub" / "random.mid")  # programs the model never saw: [UNK] words
    (midi / "broken.mid").write_bytes(b"not a MIDI file")
    out = tmp_path / "midi.json"
    assert main(["evaluate", "--model", str(debug_run), "--midi", str(midi), "--samples", "0", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["data"]["files_total"] == 5 and results["data"]["files_kept"] == 4
    assert results["data"]["files_skipped"] == {"unreadable MIDI": 1}
    assert results["likelihood"]["windows"] >= 4 and results["likelihood"]["loss_per_note"] > 0
    assert "validity" not in results and "statistics" not in results
    assert "loss per note" in capsys.readouterr().out


def test_bad_input_is_a_clear_error(debug_run, tiny_dataset, tmp_path, capsys):
    from datasets import Dataset, DatasetDict

    with pytest.raises(EvaluateError, match="exactly one of"):
        evaluate(EvaluateConfig(model=str(debug_run)))
    with pytest.raises(EvaluateError, match="exactly one of"):
        evaluate(EvaluateConfig(model=str(debug_run), dataset=str(tiny_dataset), midi=str(tmp_path)))
    with pytest.raises(EvaluateError, match="model not found"):
        evaluate(EvaluateConfig(model=str(tmp_path / "nothing"), dataset=str(tiny_dataset)))
    with pytest.raises(EvaluateError, match=r"no mmmgen\.json"):
        evaluate(EvaluateConfig(model=str(tmp_path), dataset=str(tiny_dataset)))
    DatasetDict({"train": Dataset.from_dict({"text": ["PIECE_START"]})}).save_to_disk(str(tmp_path / "no_test"))
    with pytest.raises(EvaluateError, match="no test split"):
        evaluate(EvaluateConfig(model=str(debug_run), dataset=str(tmp_path / "no_test")))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.mid").write_bytes(b"")
    (bad / "b.mid").write_bytes(b"garbage")
    with pytest.raises(EvaluateError, match=r"2 found, 2 skipped \(empty file: 1, unreadable MIDI: 1\)"):
        evaluate(EvaluateConfig(model=str(debug_run), midi=str(bad)))
    assert main(["evaluate", "--model", str(debug_run)]) == 2
    assert "exactly one of" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(debug_run), "--dataset", str(tiny_dataset), "--samples", "-1"]) == 2


def test_a_chord_track_is_a_valid_track_when_it_has_every_bar():
    from mmmgen.generate.song import Song
    from mmmgen.model.evaluate import track_problem
    from mmmgen.text import vocab as V
    from mmmgen.text.chord_track import chord_track_text
    from mmmgen.text.chords import ChordSpan, parse_chord

    header = Song(genre=V.OTHER_GENRE, n_bars=4).header
    spans = [ChordSpan(4 * b, 4 * b + 4, parse_chord(c)) for b, c in enumerate(("Am", "F", "C", "G"))]
    bar_steps = V.bar_steps((4, 4), 12)
    assert track_problem(header, chord_track_text(spans, 4, bar_steps, 12), 4) is None
    assert track_problem(header, chord_track_text(spans[:3], 3, bar_steps, 12), 4) == "3 bars instead of 4"
