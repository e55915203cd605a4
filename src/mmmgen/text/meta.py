"""What a MIDI file says that MMM text cannot: its tempo map, and its tracks' names and programs.

MMM text holds the meter, the instruments (``INST=p`` / ``INST=DRUMS``) and the notes, but not the
tempo, the names of the tracks or the drum kit (a drum track's program on channel 10). A song read
from a MIDI file keeps these facts beside its text as a ``SongMeta`` (``Song.meta``), so a MIDI file
in is a MIDI file out: ``extend``, ``infill`` and ``generate --prompt`` write the file's tempo (and
its tempo changes in the kept bars), names and kits again.

The pair is pure: ``score_meta`` reads them from a ``symusic.Score`` (the stretch of bars a song
keeps, the tracks it keeps), ``apply_meta`` writes them into a decoded score. Times are quarter
notes from the song's start, so they do not depend on either file's ticks per quarter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from mmmgen.text import vocab as V


@dataclass(frozen=True)
class TrackMeta:
    """One track's facts: its name and program (for drums, the GM kit), and the ``INST`` word of the track they name."""

    inst: str  # a name applies only to a track of this instrument (a track added later is not renamed)
    name: str = ""
    program: int = 0


@dataclass(frozen=True)
class SongMeta:
    """The tempo map and track facts of a song read from a MIDI file (see the module's docstring).

    Attributes:
        tempos: ``(quarters from the song's start, quarter notes per minute)``, in time order; the
            first at 0 (the tempo sounding where the song starts). Empty: one tempo, the song's.
        tracks: one ``TrackMeta`` per track of the song's text, in order.
    """

    tempos: tuple[tuple[float, float], ...] = ()
    tracks: tuple[TrackMeta, ...] = ()

    @property
    def tempo(self) -> float | None:
        """The tempo at the song's start (None without a tempo map)."""
        return self.tempos[0][1] if self.tempos else None

    def without_tempos(self) -> SongMeta:
        """The same facts with no tempo map (a tempo given by the user replaces the file's)."""
        return replace(self, tempos=())


def score_meta(score, sources: Sequence[int], start_tick: int = 0, end_tick: int | None = None) -> SongMeta:
    """The facts of ``score`` that a song of its bars ``[start_tick, end_tick)`` keeps beside its text.

    Args:
        score: a ``symusic.Score`` in ticks.
        sources: for each track of the song's text, the index of the score track it came from.
        start_tick, end_tick: the stretch the song holds (``end_tick`` None: to the end).
    """
    tpq = float(score.tpq)
    tempos: list[tuple[float, float]] = []
    for tempo in sorted(score.tempos, key=lambda t: t.time):
        time = int(tempo.time)
        if end_tick is not None and time >= end_tick:
            break
        at, qpm = max(time - start_tick, 0) / tpq, round(float(tempo.qpm), 2)  # a file holds whole us per quarter: 175.00007 is 175
        if tempos and tempos[-1][0] == at:
            tempos[-1] = (at, qpm)  # the last change before (or at) the start sounds there
        else:
            tempos.append((at, qpm))
    tracks = []
    for index in sources:
        track = score.tracks[index]
        tracks.append(TrackMeta(V.inst(int(track.program), bool(track.is_drum)), str(track.name), int(track.program)))
    return SongMeta(tuple(tempos), tuple(tracks))


def apply_meta(score, meta: SongMeta | None, tempo: float | None = None):
    """``score`` (decoded from a song's text, in ticks) with ``meta``'s tempo map, names and kits; returns it.

    ``tempo``: the song's tempo now; the map is scaled so that it starts there (a song whose tempo
    was changed keeps its tempo changes, relative). A track's name and program apply only while
    the track at its place still has its instrument (``TrackMeta.inst``).
    """
    from symusic import Tempo

    if meta is None:
        return score
    if meta.tempos:
        scale = (tempo or meta.tempo) / meta.tempo
        tpq = int(score.tpq)
        score.tempos.clear()
        for at, qpm in meta.tempos:
            score.tempos.append(Tempo(round(at * tpq), qpm=qpm * scale))
    for track, facts in zip(score.tracks, meta.tracks, strict=False):
        if V.inst(int(track.program), bool(track.is_drum)) != facts.inst:
            continue
        if facts.name:
            track.name = facts.name
        track.program = facts.program
    return score
