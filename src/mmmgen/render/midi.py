"""MIDI files in and out: scores from MIDI/MMM text, channel assignment and the type-1 MIDI writer."""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Sequence
from pathlib import Path

from mmmgen.errors import RenderError

log = logging.getLogger(__name__)

MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".smf")
DRUM_CHANNEL = 9  # channel 10, counted from 1


# --- input ---------------------------------------------------------------------------------------
def is_midi_file(path: str | Path) -> bool:
    """A MIDI file by its suffix or its ``MThd`` header."""
    path = Path(path)
    if path.suffix.lower() in MIDI_SUFFIXES:
        return True
    try:
        with path.open("rb") as f:
            return f.read(4) == b"MThd"
    except OSError:
        return False


def load_midi(path: str | Path, tempo: float | None = None):
    """A ``symusic.Score`` (ticks) read from a MIDI file; ``tempo`` replaces its tempo map."""
    from symusic import Score, Tempo

    path = Path(path)
    if not path.is_file():
        msg = f"input not found: {path}"
        raise RenderError(msg)
    try:
        score = Score(str(path))
    except Exception as exc:  # symusic raises plain RuntimeErrors for broken files
        msg = f"cannot read MIDI file {path}: {exc}"
        raise RenderError(msg) from exc
    if tempo:
        score.tempos.clear()
        score.tempos.append(Tempo(0, qpm=float(tempo)))
    return score


def as_score(score_or_piece, grid: int = 12, tempo: float | None = None):
    """A ``symusic.Score`` (ticks) from a score, a decoded ``Piece`` or MMM text."""
    from mmmgen.text.decode import Piece, piece_to_score, text_to_score

    if isinstance(score_or_piece, str):
        return text_to_score(score_or_piece, grid=grid, tempo=tempo)
    if isinstance(score_or_piece, Piece):
        return piece_to_score(score_or_piece, grid=grid, tempo=tempo)
    ttype = str(getattr(score_or_piece, "ttype", "Tick"))
    return score_or_piece if "Tick" in ttype else score_or_piece.to("tick")


# --- MIDI ----------------------------------------------------------------------------------------
def assign_channels(tracks: Sequence[tuple[int, bool]]) -> list[int]:
    """MIDI channels (0-15) for ``(program, is_drum)`` tracks: drums on 9, others each their own.

    With more than 15 pitched tracks, a track shares the channel of an earlier track of the same
    program when there is one, else channels are reused in turn (and a warning is logged).
    """
    free = [c for c in range(16) if c != DRUM_CHANNEL]
    channels: list[int] = []
    by_program: dict[int, int] = {}
    reused = 0
    for program, is_drum in tracks:
        if is_drum:
            channels.append(DRUM_CHANNEL)
        elif free:
            channels.append(free.pop(0))
            by_program.setdefault(program, channels[-1])
        elif program in by_program:
            channels.append(by_program[program])
        else:
            channels.append([c for c in range(16) if c != DRUM_CHANNEL][reused % 15])
            reused += 1
    if reused:
        log.warning("%d pitched tracks share MIDI channels with other instruments (16 channels at most)", reused)
    return channels


def _vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _meta(kind: int, data: bytes) -> bytes:
    return bytes([0xFF, kind]) + _vlq(len(data)) + data


def _chunk(events: list[tuple[int, int, bytes]]) -> bytes:
    """A track chunk from ``(tick, order, bytes)`` events (sorted here; end of track added)."""
    events.sort(key=lambda e: (e[0], e[1]))
    body = bytearray()
    now = 0
    for tick, _, data in events:
        body += _vlq(tick - now) + data
        now = tick
    body += b"\x00" + _meta(0x2F, b"")
    return b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def midi_bytes(score) -> bytes:
    """A type-1 standard MIDI file of a score: a tempo/meter track, then one track per score track.

    Each track gets its name, its channel (``assign_channels``) and a program change at tick 0,
    then its notes, control changes, pedals and pitch bends. Velocities are kept (clipped to 1-127).
    """
    import numpy as np

    score = as_score(score)
    tpq = int(score.tpq)
    if not 0 < tpq < 0x8000:
        msg = f"ticks per quarter {tpq} cannot be written to a MIDI file"
        raise RenderError(msg)
    conductor: list[tuple[int, int, bytes]] = []
    for tempo in score.tempos:
        mspq = max(1, min(round(tempo.mspq), 0xFFFFFF))
        conductor.append((int(tempo.time), 0, _meta(0x51, mspq.to_bytes(3, "big"))))
    for ts in score.time_signatures:
        den_log = max(0, round(math.log2(max(int(ts.denominator), 1))))
        conductor.append((int(ts.time), 0, _meta(0x58, bytes([int(ts.numerator) & 0xFF, den_log, 24, 8]))))
    for ks in score.key_signatures:
        conductor.append((int(ks.time), 0, _meta(0x59, struct.pack(">bB", max(-7, min(7, int(ks.key))), int(ks.tonality) & 1))))
    for marker in score.markers:
        conductor.append((int(marker.time), 1, _meta(0x06, str(marker.text).encode("utf-8", "replace"))))
    chunks = [_chunk(conductor)]
    channels = assign_channels([(int(t.program), bool(t.is_drum)) for t in score.tracks])
    for track, ch in zip(score.tracks, channels, strict=True):
        events: list[tuple[int, int, bytes]] = []
        name = str(track.name) or ("Drums" if track.is_drum else "")
        if name:
            events.append((0, 0, _meta(0x03, name.encode("utf-8", "replace"))))
        program = int(track.program) & 0x7F  # on channel 10 it picks the drum kit
        events.append((0, 1, bytes([0xC0 | ch, program])))
        for cc in track.controls:
            events.append((int(cc.time), 2, bytes([0xB0 | ch, int(cc.number) & 0x7F, int(cc.value) & 0x7F])))
        has_cc64 = any(int(cc.number) == 64 for cc in track.controls)
        for pedal in ([] if has_cc64 else track.pedals):  # symusic reads CC64 as both
            events.append((int(pedal.time), 2, bytes([0xB0 | ch, 64, 127])))
            events.append((int(pedal.time + pedal.duration), 2, bytes([0xB0 | ch, 64, 0])))
        for bend in track.pitch_bends:
            value = max(0, min(int(bend.value) + 8192, 16383))
            events.append((int(bend.time), 2, bytes([0xE0 | ch, value & 0x7F, value >> 7])))
        notes = track.notes.numpy()
        if len(notes["time"]):
            start = notes["time"].astype(np.int64)
            end = start + np.maximum(notes["duration"].astype(np.int64), 1)
            pitch = np.clip(notes["pitch"], 0, 127).astype(np.int64)
            vel = np.clip(notes["velocity"], 1, 127).astype(np.int64)
            on, off = 0x90 | ch, 0x80 | ch
            # at equal ticks: note-offs (order 3) before note-ons (order 4), so re-struck notes sound
            events += [(int(e), 3, bytes((off, int(p), 0))) for e, p in zip(end, pitch, strict=True)]
            events += [(int(s), 4, bytes((on, int(p), int(v)))) for s, p, v in zip(start, pitch, vel, strict=True)]
        chunks.append(_chunk(events))
    header = b"MThd" + struct.pack(">IHHH", 6, 1, len(chunks), tpq)
    return header + b"".join(chunks)


def write_midi(score, path: str | Path) -> Path:
    """Write a score (``symusic.Score``, ``Piece`` or MMM text) as a standard MIDI file.

    Drums go on channel 10, every other track on its own channel with a program change, so any
    General MIDI synthesizer plays the right instruments (see ``midi_bytes``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(midi_bytes(score))
    return path
