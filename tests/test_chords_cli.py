"""``mmmgen chords``: MIDI, MMM text and MusicXML in; a line per bar out, and the CSV."""

from __future__ import annotations

from synth import make_score, write

from mmmgen.cli import main
from mmmgen.text.chords import parse_progression
from mmmgen.text.harmony import chords_from_csv

PROGRESSION = "Am F C G7"


def progression_score():
    notes = []
    for span in parse_progression(PROGRESSION):
        tones = sorted(span.chord.pitch_classes)
        notes += [(36 + span.chord.root, float(span.start), 4.0)] + [(48 + pc, float(span.start), 4.0) for pc in tones]
    return make_score([(0, False, notes)])


def test_chords_of_a_midi_file(tmp_path, capsys):
    midi = write(progression_score(), tmp_path / "song.mid")
    assert main(["chords", str(midi), "--out", str(tmp_path / "song.csv")]) == 0
    out = capsys.readouterr().out
    assert "bar   1 | Am . . . |" in out and "bar   4 | G7 . . . |" in out
    spans = chords_from_csv((tmp_path / "song.csv").read_text())
    assert [s.chord for s in spans] == [s.chord for s in parse_progression(PROGRESSION)]


def test_chords_of_mmm_text(tmp_path, capsys):
    from mmmgen.text.encode import score_to_texts

    text = score_to_texts(progression_score())[0]
    (tmp_path / "song.txt").write_text(text + "\n")
    assert main(["chords", str(tmp_path / "song.txt")]) == 0
    assert "bar   2 | F . . . |" in capsys.readouterr().out


def test_chords_of_musicxml_and_its_own_symbols(tmp_path, capsys):
    from music21 import harmony, meter, note, stream

    part = stream.Part()
    part.append(meter.TimeSignature("4/4"))
    for figure, pitch in (("Dm7", "F4"), ("G7", "B4"), ("C", "E4")):
        part.append(harmony.ChordSymbol(figure))
        part.append(note.Note(pitch, quarterLength=4))
    path = tmp_path / "sheet.musicxml"
    stream.Score([part]).write("musicxml", fp=str(path))
    assert main(["chords", str(path), "--symbols", "--out", str(tmp_path / "sheet.csv")]) == 0
    assert "bar   1 | Dm7 . . . |" in capsys.readouterr().out
    labels = [s.chord.label for s in chords_from_csv((tmp_path / "sheet.csv").read_text())]
    assert labels == ["D:min7", "G:7", "C:maj"]


def test_errors_are_clear(tmp_path, capsys):
    assert main(["chords", str(tmp_path / "missing.mid")]) == 2
    assert "no such file" in capsys.readouterr().err
    midi = write(progression_score(), tmp_path / "song.mid")
    assert main(["chords", str(midi), "--symbols"]) == 2
    assert "no chord symbols" in capsys.readouterr().err
    (tmp_path / "notes.doc").write_text("x")
    assert main(["chords", str(tmp_path / "notes.doc")]) == 2
    assert "unknown file type" in capsys.readouterr().err
