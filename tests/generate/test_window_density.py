"""Each window's track heads say the density of that window's bars (``window.window_head``), as in training."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tiny import untrained_model

from mmmgen.generate import window as W
from mmmgen.generate.sampling import Sampling
from mmmgen.generate.song import Generator, Song, generate_song
from mmmgen.text import vocab as V
from mmmgen.text.encode import density_level
from mmmgen.text.fill import TrackWords, split_words

EDGES = [2.0, 5.0, 11.0, 16.0]
GRID = 12


def bar(*pitches: int) -> list[str]:
    """A bar of quarter notes, one per pitch."""
    words = []
    for p in pitches:
        words += [V.note_on(p), V.time_delta(GRID, GRID), V.note_off(p)]
    return words


def head(program: int = 0, level: int = 3, drum: bool = False) -> list[str]:
    return [V.TRACK_START, V.inst(program, drum), V.density(level)]


def level_of(words: list[str]) -> int:
    return next(int(V.parse_word(w).value) for w in words if V.parse_word(w).kind == V.DENSITY)


@given(counts=st.lists(st.integers(0, 4), min_size=1, max_size=8), window=st.integers(1, 16))
def test_the_level_is_the_known_bars_notes_per_window(counts, window):
    bars = [bar(*range(60, 60 + n)) for n in counts]
    got = W.window_head(head(), bars, window, EDGES)
    assert got[:2] == head()[:2] and len(got) == 3
    assert level_of(got) == density_level(round(sum(counts) * window / len(counts)), EDGES)


def test_silent_recent_bars_read_the_lowest_level():
    assert level_of(W.window_head(head(level=4), [[], [], [], []], 8, EDGES)) == 0


@pytest.mark.parametrize(("track_head", "bars", "edges"), [
    (head(level=4), [bar(60)], None),  # no edges: the song's head
    (head(level=4), [], EDGES),  # no known bar (a new track's first window)
    ([V.TRACK_START, V.chord_track_inst(), V.density(0)], [[]], EDGES),  # the chord track
])
def test_the_head_is_kept_without_edges_known_bars_or_notes(track_head, bars, edges):
    assert W.window_head(track_head, bars, 8, edges) == track_head


def test_window_text_shows_each_tracks_density_of_its_window_bars():
    busy = TrackWords(head(level=1), [bar(60, 62, 64, 65)] * 4)
    quiet = TrackWords(head(level=4), [bar(40)] * 2 + [[], []])
    text = W.window_text([V.PIECE_START], [busy, quiet], 2, 4, engine=type("E", (), {"density_edges": EDGES, "window": 8})())
    levels = [level_of(t.head) for t in split_words(text).tracks]
    assert levels == [density_level(32, EDGES), 0]
    assert W.window_text([V.PIECE_START], [busy, quiet], 2, 4) == " ".join([V.PIECE_START, *(TrackWords(t.head, t.bars[2:4]).text() for t in (busy, quiet))])


def spy_on(gen) -> list[str]:
    """The texts ``gen`` reads from now on (each request's prefix), in order."""
    read, original = [], gen._sample_words

    def spy(prefix, state, sampling):
        read.append(prefix)
        return original(prefix, state, sampling)

    gen._sample_words = spy
    return read


def target_head(prefix: str) -> list[str]:
    """The head of the track a window writes (the prefix's last, unfinished track)."""
    words = prefix.split()
    at = len(words) - 1 - words[::-1].index(V.TRACK_START)
    return words[at:at + 3]


def reads_when_extending(edges):
    """The texts the model reads while a 2-track song whose second track stopped 2 bars ago gets 2 more bars."""
    gen = Generator(*untrained_model(), window=4, density_edges=edges)
    tracks = (TrackWords(head(0, 3), [bar(60, 64)] * 4).text(), TrackWords(head(33, 3), [bar(40), bar(43), [], []]).text())
    song = Song(n_bars=4, tracks=tracks)
    read = spy_on(gen)
    longer = gen.extend(song, 2, Sampling(seed=1))
    return read, song, longer


def test_an_extension_window_shows_a_track_that_stopped_as_silent_and_the_song_keeps_its_heads():
    read, song, longer = reads_when_extending(EDGES)
    second = target_head(read[1])  # the bass's window: its 2 recent bars are empty
    assert second[1] == V.inst(33) and level_of(second) == 0
    shown = split_words(read[1]).tracks[0]  # the piano's window, written: 4 bars of the model's
    notes = sum(V.parse_word(w).kind == V.NOTE_ON for b in shown.bars for w in b)
    assert len(shown.bars) == 4 and level_of(shown.head) == density_level(notes, EDGES)
    assert level_of(target_head(read[0])) == density_level(8, EDGES)  # 2 notes in each of its 2 recent bars: 8 per window of 4
    assert [t.head for t in split_words(longer.text).tracks] == [t.head for t in split_words(song.text).tracks]
    plain, _, _ = reads_when_extending(None)
    assert level_of(target_head(plain[1])) == 3  # without edges: the song's own head


def test_an_asked_for_density_is_what_every_window_of_a_long_piece_reads():
    gen = Generator(*untrained_model(), window=4, density_edges=EDGES)
    read = spy_on(gen)
    song = generate_song(gen, tracks=1, genre="POP", n_bars=8, density=1, sampling=Sampling(seed=2))
    later = [target_head(prefix) for prefix in read if prefix.split().count(V.BAR_START) > 0]
    assert len(later) == 2 and all(level_of(h) == 1 for h in later)  # windows 2 and 3 of 2 new bars each
    assert level_of(split_words(song.text).tracks[0].head) == 1


def test_a_song_of_one_window_reads_as_a_plain_call_wrote_it():
    """Tracks a window shows whole keep their own heads (a sampled DENSITY stays what the model drew)."""
    gen = Generator(*untrained_model(), window=8, density_edges=EDGES)
    read = spy_on(gen)
    song = generate_song(gen, tracks=3, genre="POP", n_bars=6, sampling=Sampling(seed=5))
    gen.infill(song, 1, [2, 3], Sampling(seed=6))
    heads = [t.head for t in split_words(song.text).tracks]
    assert len(read) == 3 + 2
    shown = [[t.head for t in split_words(prefix).tracks] for prefix in read]
    assert [len(s) for s in shown] == [0, 1, 2, 3, 3]  # 3 new tracks, then 2 fills in a window of all 3
    assert all(s == heads[: len(s)] for s in shown)
