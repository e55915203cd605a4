"""Generation over chords with any model (``chords=``, ``chord_rule=``): generate, extend, infill,
harmonize; a model that knows chords writes the chord track first; ``--chords`` on the command line."""

from __future__ import annotations

import pytest
from synth import make_score, write
from tiny import check_valid, untrained_model

from mmmgen.cli import main
from mmmgen.generate.harmonize import harmonize
from mmmgen.generate.harmony import chord_tone_share
from mmmgen.generate.progression import knows_chords, load_chords, song_chords
from mmmgen.generate.sampling import Sampling
from mmmgen.generate.song import Generator, Song, generate_song
from mmmgen.text import vocab as V
from mmmgen.text.chords import ChordError
from mmmgen.text.decode import text_to_piece


def follows(song, chords=None) -> tuple[int, int]:
    piece = text_to_piece(song.text, strict=True)
    notes = [(p, a, e) for t in piece.tracks if not t.is_drum for p, a, e, _ in t.notes]
    return chord_tone_share(notes, chords or song.chords, 12)


@pytest.mark.parametrize("rule", ["strict", "loose"])
def test_generate_over_a_progression_follows_it(generator, rule):
    song = generate_song(generator, tracks=2, genre="POP", instruments=[(0, False), (33, False)], n_bars=4,
                         sampling=Sampling(seed=3), chords="Am F C/E G7", chord_rule=rule)
    check_valid(song)
    assert [s.chord.label for s in song.chords] == ["A:min", "F:maj", "C:maj/E", "G:7"]
    assert song.text.split()[3:5] == [V.TRACK_START, V.chord_track_inst()]
    good, total = follows(song)
    assert good == total > 0
    bass = text_to_piece(song.text).tracks[1]
    for bar, root in enumerate([9, 5, 4, 7]):  # the bass line lands on the chord's bass (E under C/E)
        assert root in {p % 12 for p, a, e, _ in bass.notes if a <= 48 * bar < e}
    if rule == "strict":
        for track in text_to_piece(song.text).tracks:
            for p, a, _, _ in track.notes:
                assert p % 12 in next(s.chord.pitch_classes for s in song.chords if s.start * 12 <= a < s.end * 12)


def test_the_rule_makes_the_difference(generator):
    """The same model and seed without the rule leave the chords by chance: the check can fail."""
    off = generate_song(generator, tracks=2, genre="POP", n_bars=4, sampling=Sampling(seed=4), chords="C Ab Bb C", chord_rule="off")
    good, total = follows(off)
    assert off.chords and good < total


def test_a_short_progression_repeats_over_a_longer_piece(untrained):
    gen = Generator(*untrained, window=4)
    song = generate_song(gen, tracks=1, genre="POP", n_bars=6, sampling=Sampling(seed=1), chords="D:2 G:2 | A")
    check_valid(song)
    assert [s.chord.label for s in song.chords] == ["D:maj", "G:maj", "A:maj"] * 3 and song.n_bars == 6
    good, total = follows(song)
    assert good == total > 0 and song.chords[-1].end == 24


def test_extend_keeps_the_songs_progression(generator):
    song = generate_song(generator, tracks=2, genre="POP", n_bars=2, sampling=Sampling(seed=5), chords="Em C")
    longer = generator.extend(song, 2, Sampling(seed=6))
    check_valid(longer)
    assert [s.chord.label for s in longer.chords] == ["E:min", "C:maj", "E:min", "C:maj"]
    good, total = follows(longer)
    assert good == total > 0
    other = generator.extend(song, 2, Sampling(seed=6), chords="B7 B7")  # new chords for the new bars
    assert [s.chord.label for s in other.chords] == ["E:min", "C:maj", "B:7", "B:7"]
    assert follows(other)[0] == follows(other)[1]


def test_extend_and_infill_of_a_song_without_chords_follow_the_chords_read_from_it(generator):
    block = [(p, 4.0 * b, 4.0) for b in range(2) for p in ((57, 60, 64), (55, 59, 62))[b]]  # Am G
    from mmmgen.generate.prompt import score_song

    song, _ = score_song(make_score([(0, False, block)]), {"codec": {"bars": 8, "grid": 12}})
    read = song_chords(song)
    assert [s.chord.label for s in read] == ["A:min", "G:maj"] and not song.chords
    plain = generator.extend(song, 2, Sampling(seed=1))  # by default only chords the song has are followed
    assert not plain.chords
    longer = generator.extend(song, 2, Sampling(seed=1), chord_rule="loose")
    assert not longer.chords  # the chords read are followed, not written
    expected = [*read, *(type(s)(s.start + 8, s.end + 8, s.chord) for s in read)]
    good, total = follows(longer, expected)
    assert good == total > 0
    filled = generator.infill(longer, 0, [1, 2], Sampling(seed=2), chord_rule="loose")
    assert follows(filled, expected)[0] == follows(filled, expected)[1]


def test_harmonize_adds_tracks_over_the_melodys_chords(generator):
    melody = [(p, float(q), 1.0) for q, p in enumerate([69, 72, 76, 72, 65, 69, 72, 69, 67, 71, 74, 71, 64, 68, 71, 76])]
    from mmmgen.generate.prompt import score_song

    song, _ = score_song(make_score([(73, False, melody)]), {"codec": {"bars": 8, "grid": 12}})
    made = harmonize(generator, song, tracks=2, sampling=Sampling(seed=8), chord_rule="strict")
    check_valid(made)
    assert len(made.tracks) == 3 and made.tracks[0] == song.tracks[0]
    assert [s.chord.label[:5] for s in made.chords][:4] == ["A:min", "F:maj", "G:maj", "E:maj"]
    piece = text_to_piece(made.text)
    notes = [(p, a, e) for t in piece.tracks[1:] for p, a, e, _ in t.notes]
    good, total = chord_tone_share(notes, made.chords, 12)
    assert good == total > 0


def test_a_model_that_knows_chords_writes_the_chord_track_first():
    from tiny import word_tokenizer

    model, _ = untrained_model()

    words = [*V.SPECIAL_TOKENS, *V.all_words(genres=["POP", "ROCK"], chords=True)]
    model.resize_token_embeddings(len(words))
    gen = Generator(model, word_tokenizer(words))
    assert knows_chords(gen) and not knows_chords(Generator(*untrained_model()))
    song = generate_song(gen, tracks=1, genre="POP", n_bars=2, sampling=Sampling(seed=2))
    check_valid(song)
    assert song.chords and song.text.split()[3:6] == [V.TRACK_START, V.chord_track_inst(), V.density(0)]
    good, total = follows(song)
    assert good == total
    given = generate_song(gen, tracks=1, genre="POP", n_bars=2, sampling=Sampling(seed=2), chords="Dm G7")
    assert [s.chord.label for s in given.chords] == ["D:min", "G:7"]
    assert Song.from_text(given.text) == given


def test_chords_parsing_errors_are_clear(tmp_path):
    with pytest.raises(ChordError, match="Hm7"):
        load_chords("Am Hm7 C")
    with pytest.raises(ChordError, match="not found"):
        load_chords(str(tmp_path / "missing.csv"))
    bad = tmp_path / "bad.csv"
    bad.write_text("when,what\n0,Am\n")
    with pytest.raises(ChordError, match="header"):
        load_chords(str(bad))
    silent = write(make_score([(0, True, [(36, 0, 1)])]), tmp_path / "drums.mid")
    with pytest.raises(ChordError, match="no chords"):
        load_chords(str(silent))


def test_chords_on_the_command_line(debug_run, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["generate", "--model", str(debug_run), "--out", str(out), "--tracks", "2", "--bars", "4", "--format", "txt,mid", "--seed", "1"]
    assert main([*args, "--chords", "Am F C G", "--chord-rule", "strict"]) == 0
    song = Song.from_text((out / "piece.txt").read_text())
    assert [s.chord.label for s in song.chords] == ["A:min", "F:maj", "C:maj", "G:maj"]
    assert follows(song)[0] == follows(song)[1] > 0
    csv = tmp_path / "chords.csv"
    csv.write_text("start_beat,end_beat,start_s,end_s,chord\n0,4,0,2,D:min\n4,8,2,4,G:7\n")
    assert main(["extend", str(out / "piece.txt"), "--model", str(debug_run), "--out", str(tmp_path / "ext"), "--bars", "2",
                 "--format", "txt", "--chords", str(csv), "--seed", "2"]) == 0
    longer = Song.from_text((tmp_path / "ext" / "piece.txt").read_text())
    assert [s.chord.label for s in longer.chords][-2:] == ["D:min", "G:7"]
    capsys.readouterr()
    assert main([*args, "--model", str(tmp_path / "no-model"), "--chords", "Am Fx"]) == 2  # fails before the model loads
    assert "bad chord 'Fx'" in capsys.readouterr().err
    assert main([*args, "--chords", "Am", "--chord-rule", "tight"]) == 2
    melody = write(make_score([(73, False, [(p, float(q), 1.0) for q, p in enumerate([60, 64, 67, 64, 65, 69, 72, 69])])]), tmp_path / "m.mid")
    assert main(["harmonize", str(melody), "--model", str(debug_run), "--out", str(tmp_path / "h"), "--tracks", "2", "--format", "txt", "--seed", "3"]) == 0
    assert "chords: C:maj | F:maj" in capsys.readouterr().out


def test_a_model_that_knows_chords_writes_chords_under_a_melody():
    from tiny import word_tokenizer

    from mmmgen.generate.prompt import score_song

    model, _ = untrained_model()
    words = [*V.SPECIAL_TOKENS, *V.all_words(genres=["POP"], chords=True)]
    model.resize_token_embeddings(len(words))
    gen = Generator(model, word_tokenizer(words))
    melody, _ = score_song(make_score([(73, False, [(p, float(q), 1.0) for q, p in enumerate([60, 64, 67, 64, 65, 69, 72, 69])])]),
                           {"codec": {"bars": 8, "grid": 12}})
    made = harmonize(gen, melody, tracks=1, sampling=Sampling(seed=4), chord_rule="strict")
    check_valid(made)
    assert made.chords and made.chords[-1].end == 8 and made.tracks[0] == melody.tracks[0]
    assert all(s.start * 12 == round(s.start * 12) for s in made.chords)


def test_a_midi_file_written_with_chords_comes_back_with_them(generator, tmp_path):
    from mmmgen.generate.prompt import prompt_song
    from mmmgen.render.files import write_midi
    from mmmgen.text.decode import text_to_score

    song = generate_song(generator, tracks=1, genre="POP", n_bars=2, sampling=Sampling(seed=9), chords="Dm7 G7/B")
    path = write_midi(text_to_score(song.text), tmp_path / "piece.mid")
    back = prompt_song(path, {"codec": {"bars": 8, "grid": 12}})
    assert [s.chord.label for s in back.chords] == ["D:min7", "G:7/B"]
