"""What MMM text cannot hold (tempo map, track names, drum kits) kept beside it: ``score_meta`` / ``apply_meta``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from symusic import Score, Tempo
from synth import make_score

from mmmgen.generate.prompt import score_song, song_to_score
from mmmgen.render.midi import midi_bytes
from mmmgen.text import vocab as V
from mmmgen.text.meta import SongMeta, TrackMeta, apply_meta, score_meta

SETTINGS = {"codec": {"bars": 8, "grid": 12}}


def named_score(tempos=((0.0, 175.0), (8.0, 90.0)), meter=(3, 4), n_bars: int = 6) -> Score:
    """Three named tracks (melody, bass, drums on the TR-808 kit) with a tempo map."""
    bar = meter[0] * 4 / meter[1]
    quarters = int(n_bars * bar)
    melody = [(72 + q % 5, float(q), 1.0) for q in range(quarters)]
    bass = [(36 + q % 3, float(q), 2.0) for q in range(0, quarters, 2)]
    drums = [(36 if q % 2 else 38, float(q), 0.25) for q in range(quarters)]
    score = make_score([(73, False, melody), (33, False, bass), (25, True, drums)], [(0, *meter)])
    for track, name in zip(score.tracks, ("Melody", "Bass", "Kit"), strict=True):
        track.name = name
    score.tempos.clear()
    for at, qpm in tempos:
        score.tempos.append(Tempo(round(at * score.tpq), qpm=qpm))
    return score


def facts(score: Score) -> tuple:
    """Tempo map (quarters, BPM), meters, and each track's (name, program, is_drum) of a score."""
    tempos = [(t.time / score.tpq, round(t.qpm, 2)) for t in score.tempos]
    meters = [(t.time / score.tpq, t.numerator, t.denominator) for t in score.time_signatures]
    return tempos, meters, [(t.name, t.program, t.is_drum) for t in score.tracks]


def test_a_song_from_midi_writes_the_files_tempo_map_names_and_kit_again():
    score = named_score()
    song, _ = score_song(score, SETTINGS)
    assert song.tempo == 175.0 and song.meta.tempos == ((0.0, 175.0), (8.0, 90.0))
    back = Score.from_midi(midi_bytes(song_to_score(song)))  # through the MIDI writer
    assert facts(back) == facts(score)


def test_a_given_tempo_replaces_the_map_and_a_changed_tempo_scales_it():
    score = named_score()
    song, _ = score_song(score, SETTINGS, tempo=100)
    tempos, _, tracks = facts(song_to_score(song))
    assert tempos == [(0.0, 100.0)] and tracks == facts(score)[2]  # one tempo; names and kit still kept
    song, _ = score_song(score, SETTINGS)
    faster = dataclasses.replace(song, tempo=350.0)  # what Generator.change_tempo does
    assert facts(song_to_score(faster))[0] == [(0.0, 350.0), (8.0, 180.0)]


def test_names_stay_with_their_instrument():
    song, _ = score_song(named_score(), SETTINGS)
    text = song.tracks[-1].replace(V.inst(0, True), V.inst(0, True))
    other = song.tracks[1].replace(V.inst(33), V.inst(40))  # the bass track replaced by a violin
    changed = dataclasses.replace(song, tracks=(song.tracks[0], other, text))
    names = [t.name for t in song_to_score(changed).tracks]
    assert names == ["Melody", "Track 2", "Kit"]
    fewer = dataclasses.replace(song, tracks=song.tracks[:1])  # remove_last twice: no stale names
    assert [t.name for t in song_to_score(fewer).tracks] == ["Melody"]


def test_only_the_tempo_changes_of_the_kept_bars_are_kept():
    score = named_score(tempos=((0.0, 100.0), (2.0, 110.0), (12.0, 140.0), (30.0, 60.0)), meter=(4, 4))
    meta = score_meta(score, [0, 1, 2], start_tick=4 * score.tpq, end_tick=16 * score.tpq)
    # the change at quarter 2 sounds where the song starts (quarter 4); the one at 30 is after its end
    assert meta.tempos == ((0.0, 110.0), (8.0, 140.0))
    assert meta.tracks == (TrackMeta("INST=73", "Melody", 73), TrackMeta("INST=33", "Bass", 33), TrackMeta("INST=DRUMS", "Kit", 25))
    assert score_meta(make_score([(0, False, [(60, 0, 1)])]), [0]).tempos == ((0.0, 120.0),)
    assert apply_meta(Score(480), None) is not None and SongMeta().tempo is None


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 400), st.floats(20, 300)), min_size=1, max_size=6, unique_by=lambda t: t[0]),
    st.lists(st.tuples(st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=12), st.integers(0, 127), st.booleans()),
             min_size=1, max_size=5),
)
def test_meta_round_trips_through_a_score(tempos, tracks):
    """Any tempo map (in sixteenths) and any names and programs come back from the score they are written into."""
    tempos = sorted((t / 4, round(q, 2)) for t, q in tempos)  # BPM to 0.01, what a file's whole microseconds hold
    meta = SongMeta(tuple(tempos if tempos[0][0] == 0 else [(0.0, tempos[0][1]), *tempos[1:]]),
                    tuple(TrackMeta(V.inst(p, d), n, p) for n, p, d in tracks))
    decoded = make_score([(0 if d else p, d, [(60, 0, 1)]) for _, p, d in tracks])  # a decoded drum track has program 0
    out = apply_meta(decoded, meta)
    assert score_meta(out, range(len(tracks))) == meta


SHARED = Path(__file__).resolve().parents[3] / "shared" / "midi-dev" / "multitrack"


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/midi-dev not present")
@pytest.mark.parametrize("path", sorted(SHARED.glob("*.mid")) if SHARED.is_dir() else [], ids=lambda p: p.name)
def test_real_songs_keep_tempo_meter_names_programs_and_kits(path):
    """A real song read as a song and written back as MIDI: the tempo changes of its bars, its meter,
    and each track's name, program and drum kit are the file's."""
    from mmmgen.data.prepare import load_score
    from mmmgen.generate.prompt import prompt_song

    original = load_score(path)
    song = prompt_song(path, SETTINGS)
    back = Score.from_midi(midi_bytes(song_to_score(song)))
    end = song.n_bars * song.time_signature[0] * 4 / song.time_signature[1]  # quarters: the song starts at the file's start here
    want = [(t.time / original.tpq, round(t.qpm, 2)) for t in original.tempos if t.time / original.tpq < end] or [(0.0, 120.0)]
    got = facts(back)[0]
    assert [q for _, q in got] == [q for _, q in want]
    assert [t for t, _ in got] == pytest.approx([t for t, _ in want], abs=1 / back.tpq)  # to a tick of the output
    assert (back.time_signatures[0].numerator, back.time_signatures[0].denominator) == song.time_signature
    if original.time_signatures:
        assert song.time_signature == (original.time_signatures[0].numerator, original.time_signatures[0].denominator)
    sources = [t for t in original.tracks if len(t.notes)]
    assert len(back.tracks) == len(sources)
    for source, track in zip(sources, back.tracks, strict=True):
        assert (track.program, track.is_drum) == (source.program, source.is_drum)  # the drum kit too
        assert track.name == (source.name or track.name)  # a nameless track gets mmmgen's default name
