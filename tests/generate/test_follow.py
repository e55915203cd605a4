"""Follow the song (``generate/follow.py``): the song's facts, each rule alone, the operations with and
without ``--free``, and dense many-track songs that used to overflow the context."""

from __future__ import annotations

import numpy as np
import pytest
from tiny import untrained_model

from mmmgen.generate import follow as F
from mmmgen.generate.controls import Controls
from mmmgen.generate.grammar import IN_BAR, TrackSpec, TrackState, VocabTable
from mmmgen.generate.sampling import ContextFull, Sampling
from mmmgen.generate.song import Generator, Song
from mmmgen.text import vocab as V
from mmmgen.text.decode import text_to_piece
from mmmgen.text.fill import TrackWords, split_words

GRID = 12


def bar(pitches, step: int = GRID) -> list[str]:
    """One 4/4 bar of notes ``step`` grid steps long, one after another (chords: a tuple)."""
    words = []
    for p in pitches:
        chord = p if isinstance(p, tuple) else (p,)
        words += [*(V.note_on(q) for q in chord), V.time_delta(step, GRID), *(V.note_off(q) for q in chord)]
    return words


def track(program: int, bars: list[list], is_drum: bool = False, step: int = GRID) -> TrackWords:
    return TrackWords([V.TRACK_START, V.inst(program, is_drum), V.density(1)], [bar(b, step) for b in bars])


def song_of(tracks: list[TrackWords], bars: int) -> Song:
    header = f"{V.PIECE_START} {V.time_signature(4, 4)} {V.genre('POP')}"
    return Song.from_text(" ".join([header, *(t.text() for t in tracks)]), n_bars=bars)


def band(n_bars: int = 8) -> list[TrackWords]:
    """A bass (36-43, C major roots), a melody (72-79) and drums (36, 38, 42), thinning out at the end."""
    bass = [[36, 43] if b < n_bars - 4 else [36] for b in range(n_bars)]
    melody = [[72, 76, 79, 77] for _ in range(n_bars)]
    drums = [[36, 42, 38, 42] for _ in range(n_bars)]
    return [track(33, bass, step=2 * GRID), track(73, melody), track(0, drums, is_drum=True)]


@pytest.fixture(scope="module")
def untrained():
    return untrained_model()


@pytest.fixture(scope="module")
def table(untrained):
    return VocabTable.from_vocab(untrained[1].get_vocab(), GRID)


def in_bar(**kw) -> TrackState:
    spec = TrackSpec(n_bars=kw.pop("n_bars", 4))
    return TrackState(spec, GRID, phase=IN_BAR, **kw)


def note_ons(v: VocabTable, mask: np.ndarray) -> set[int]:
    return {p for p in range(V.N_PITCHES) if v.note_on[p] >= 0 and mask[v.note_on[p]]}


# --- the song's facts ----------------------------------------------------------------------------
def test_song_facts_read_each_tracks_range_kit_density_the_key_and_the_bass():
    facts = F.song_facts(band())
    bass, melody, drums = facts.tracks
    assert (bass.low, bass.high, bass.is_drum) == (36, 43, False)
    assert (melody.low, melody.high) == (72, 79) and melody.pitches == {72, 76, 77, 79}
    assert drums.is_drum and drums.pitches == {36, 38, 42} and drums.notes_per_bar == 4
    assert bass.notes_per_bar == 1  # its last four bars hold one note each
    assert facts.bass == 0 and facts.key == "C:major"
    near = F.song_facts(band(), near=[0, 1])  # rewriting bars 1-2: density of bars 3-6
    assert near.tracks[0].notes_per_bar == 1.5  # two notes in bars 3-4, one in bars 5-6
    assert F.song_facts([track(0, [[], []])]).key is None  # no pitched notes, no key


def test_recent_bars_are_the_last_or_the_nearest_outside_the_span():
    assert F.recent_bars(10, None) == [6, 7, 8, 9]
    assert F.recent_bars(10, [4, 5]) == [2, 3, 6, 7]
    assert F.recent_bars(3, [0, 1, 2]) == [0, 1, 2]  # a whole track rewritten: all of it
    assert F.recent_bars(10, None, totals=[8] * 7 + [1, 0, 0]) == [3, 4, 5, 6]  # before the ending
    assert F.recent_bars(3, None, totals=[0, 0, 0]) == [0, 1, 2]


def test_nearest_first_puts_the_same_role_and_register_first():
    bass, melody, drums = band()
    low_melody = track(74, [[60, 62]])
    assert F.nearest_first([drums, melody, low_melody], bass) == [2, 1, 0]
    assert F.nearest_first([melody, bass, low_melody], drums) == [1, 2, 0]  # a drum track's nearest: the lowest
    assert F.nearest_first([melody, bass], None) == [0, 1]


# --- each rule alone ------------------------------------------------------------------------------
def test_register_rule_keeps_new_notes_in_the_tracks_range(table):
    f = F.TrackFollow(register=(50, 60))
    m = F.register_rule(in_bar(), table, f)
    assert note_ons(table, m) == set(range(50, 61))
    assert m[table.time_delta[1]] and m[table.note_off[70]] and m[table.ids[V.BAR_END]]  # only NOTE_ON is narrowed
    assert note_ons(table, F.register_rule(in_bar(is_drum=True), table, f)) == set(range(128))


def test_kit_rule_keeps_drum_hits_on_the_tracks_drums(table):
    f = F.TrackFollow(is_drum=True, kit=frozenset({36, 38}))
    assert note_ons(table, F.kit_rule(in_bar(is_drum=True), table, f)) == {36, 38}
    assert note_ons(table, F.kit_rule(in_bar(), table, F.TrackFollow())) == set(range(128))


def test_tonal_rule_leans_bar_starts_to_the_tonic_triad_and_the_last_bar_to_the_tonic(table):
    d_minor = F.TrackFollow(tonic=2, third=5)
    classes = lambda m: {p % 12 for p in note_ons(table, m)}  # noqa: E731
    assert classes(F.tonal_rule(in_bar(), table, d_minor)) == {2, 5, 9}
    assert classes(F.tonal_rule(in_bar(), table, F.TrackFollow(tonic=2, third=5, bass=True))) == {2, 9}
    assert classes(F.tonal_rule(in_bar(bars_done=3), table, d_minor)) == {2}  # the last bar of 4
    assert len(note_ons(table, F.tonal_rule(in_bar(bar_notes=1), table, d_minor))) == 128  # only the bar's first note


def test_density_rule_keeps_notes_per_bar_between_its_bounds(table):
    f = F.TrackFollow(density=(2, 3))
    assert not note_ons(table, F.density_rule(in_bar(bar_notes=3), table, f))  # the most: no more notes
    few = F.density_rule(in_bar(bar_notes=1, t=12), table, f)  # too few yet: the bar may not end nor run out
    assert not few[table.ids[V.BAR_END]] and not few[table.time_delta[36]] and few[table.time_delta[35]]
    assert F.density_rule(in_bar(bar_notes=2, t=12), table, f).all()
    silent = F.TrackFollow(density=(0, 0))
    assert not note_ons(table, F.density_rule(in_bar(), table, silent))  # a track that stopped stays silent


def test_the_rules_lean_and_never_leave_no_word(table):
    s = in_bar()
    only = table.mask([table.note_on[70]])  # e.g. the controls left one pitch, out of the register
    assert np.array_equal(F.TrackFollow(register=(50, 60)).narrow(s, table, only.copy()), only)


def test_explicit_controls_win_and_free_turns_the_rules_off():
    facts = F.song_facts(band())
    rules = F.TrackFollow.build(facts, 1, None, Controls(pitch_range=(40, 100), scale="D:minor"))
    assert rules.register is None and rules.tonic == 2 and rules.third == 5  # the range and key asked for
    assert F.TrackFollow.build(facts, 1).register == (70, 81)
    assert F.TrackFollow.build(facts, 1, F.Follow(register_margin=5)).register == (67, 84)
    assert F.TrackFollow.build(facts, 1, F.Follow(register_margin=None)).register is None
    assert F.TrackFollow.build(facts, 2).kit == {36, 38, 42}
    assert F.TrackFollow.build(facts, 2, F.Follow(whole_kit=True)).kit is None
    assert F.TrackFollow.build(facts, 0).bass and F.TrackFollow.build(facts, 0).tonic == 0
    assert F.TrackFollow.build(facts, 0, F.Follow(free=True)) is None
    assert F.follow_tracks(band(), F.Follow(free=True)) == [None, None, None]


# --- the operations ----------------------------------------------------------------------------------
def new_pitches(song: Song, k: int, bars) -> list[int]:
    return [p for b in bars for p in F._note_ons(split_words(song.text).tracks[k].bars[b])]


def outside(song: Song, before: list[TrackWords], changed: dict[int, list[int]]) -> int:
    """New notes outside their track's range +/- 2 (pitched) or kit (drums)."""
    facts = F.song_facts(before)
    bad = 0
    for k, bars in changed.items():
        f = facts.tracks[k]
        ok = (lambda p, f=f: p in f.pitches) if f.is_drum else (lambda p, f=f: f.low - 2 <= p <= f.high + 2)
        bad += sum(not ok(p) for p in new_pitches(song, k, bars))
    return bad


def test_extend_infill_and_regenerate_follow_the_song_and_free_does_not(untrained):
    gen = Generator(*untrained, window=4)
    tracks = band()
    song = song_of(tracks, 8)
    extended = gen.extend(song, 4, Sampling(seed=1))
    assert outside(extended, tracks, {k: range(8, 12) for k in range(3)}) == 0
    free = gen.extend(song, 4, Sampling(seed=1), follow=F.Follow(free=True))
    assert outside(free, tracks, {k: range(8, 12) for k in range(3)}) > 0  # an untrained model plays anywhere
    for k in range(3):
        filled = gen.infill(song, k, [3, 4], Sampling(seed=2 + k))
        assert outside(filled, tracks, {k: [3, 4]}) == 0
    again = gen.regenerate_last(song, sampling=Sampling(seed=5))  # the drums again: the same kit
    assert outside(again, tracks, {2: range(8)}) == 0 and again.instruments == song.instruments
    takes = gen.infill(song, 1, [5], Sampling(seed=6), takes=2)
    assert all(outside(t.song, tracks, {1: [5]}) == 0 for t in takes)


def test_new_bars_keep_roughly_the_notes_per_bar_and_the_bass_leans_to_the_key(untrained):
    gen = Generator(*untrained, window=4)
    song = song_of(band(), 8)
    out = split_words(gen.extend(song, 4, Sampling(seed=3)).text).tracks
    for k, most in enumerate([3, 7, 7]):  # 1, 4 and 4 notes per recent bar: at most 1.5 times, plus one
        counts = [len(F._note_ons(b)) for b in out[k].bars[8:]]
        assert all(c <= most for c in counts), (k, counts)
    bass_starts = [F._note_ons(b)[0] % 12 for b in out[0].bars[8:] if F._note_ons(b)]
    assert set(bass_starts) <= {0, 7}  # C major's tonic and fifth


# --- long and dense songs -----------------------------------------------------------------------------
def dense_song(n_tracks: int = 12, n_bars: int = 12) -> Song:
    """``n_tracks`` tracks of sixteenth-note chords (about 70 words per bar each): one bar of all is ~850 words."""
    tracks = []
    for k in range(n_tracks):
        low = 30 + 5 * k
        tracks.append(track(k * 8, [[(low + b % 3, low + 4)] * 16 for b in range(n_bars)], step=GRID // 4))
    return song_of(tracks, n_bars)


def test_a_dense_many_track_song_that_overflowed_the_context_works_in_every_operation():
    model, tokenizer = untrained_model(n_positions=1024, seed=1)
    gen = Generator(model, tokenizer, window=8)
    song = dense_song()
    assert len(gen._encode(song.text)) > 8 * gen.context  # far beyond the context
    filled = gen.infill(song, 0, [4, 5], Sampling(seed=1, top_k=8))
    extended = gen.extend(song, 2, Sampling(seed=2, top_k=8))
    added = gen.add_track(song, instrument=(40, False), sampling=Sampling(seed=3, top_k=8))
    again = gen.regenerate_last(song, sampling=Sampling(seed=4, top_k=8))
    takes = gen.infill(song, 5, [7], Sampling(seed=5, top_k=8), takes=2)
    for result in (filled, extended, added, again, *(t.song for t in takes)):
        piece = text_to_piece(result.text, strict=True)
        assert all(t.n_bars == result.n_bars for t in piece.tracks)
    assert extended.n_bars == 14 and len(added.tracks) == 13


def test_only_a_bar_that_does_not_fit_alone_is_an_error():
    model, tokenizer = untrained_model(n_positions=12, seed=1)
    gen = Generator(model, tokenizer, window=8)
    with pytest.raises(ContextFull, match="even alone"):
        gen.infill(dense_song(n_tracks=2, n_bars=4), 0, [1], Sampling(seed=1))


# --- the command line ------------------------------------------------------------------------------
def test_the_flags_make_the_follow_options():
    from mmmgen.cli import follow_from, parse_config
    from mmmgen.config import FollowConfig

    (f,), _ = parse_config([], [FollowConfig], "mmmgen extend", "")
    assert follow_from(f) == F.Follow()
    (f,), _ = parse_config(["--free"], [FollowConfig], "mmmgen extend", "")
    assert follow_from(f) == F.Follow(free=True)
    (f,), _ = parse_config(["--register-margin", "-1", "--whole-kit"], [FollowConfig], "mmmgen extend", "")
    assert follow_from(f) == F.Follow(register_margin=None, whole_kit=True)
    with pytest.raises(SystemExit):
        parse_config(["--register-margin", "-2"], [FollowConfig], "mmmgen extend", "")


def test_extend_and_infill_of_a_midi_file_follow_it_unless_free(debug_run, tmp_path):
    from mmmgen.cli import main
    from mmmgen.generate.prompt import prompt_song
    from mmmgen.model.run import generator_from_run
    from mmmgen.text.decode import text_to_score

    midi = tmp_path / "band.mid"
    text_to_score(song_of(band(), 8).text, GRID).dump_midi(str(midi))
    tracks = split_words(prompt_song(midi, generator_from_run(debug_run)[1]).text).tracks
    common = ["--model", str(debug_run), "--format", "txt", "--seed", "3"]
    assert main(["extend", str(midi), "--bars", "4", "--out", str(tmp_path / "e"), *common]) == 0
    extended = Song.from_text((tmp_path / "e" / "piece.txt").read_text())
    assert extended.n_bars == 12 and outside(extended, tracks, {k: range(8, 12) for k in range(3)}) == 0
    assert main(["infill", "--input", str(midi), "--track", "2", "--bars", "3-4", "--out", str(tmp_path / "i"), *common]) == 0
    assert outside(Song.from_text((tmp_path / "i" / "piece.txt").read_text()), tracks, {1: [2, 3]}) == 0
    assert main(["extend", str(midi), "--bars", "4", "--free", "--out", str(tmp_path / "f"), *common]) == 0
    assert Song.from_text((tmp_path / "f" / "piece.txt").read_text()).n_bars == 12
