"""MMM text becomes something to hear and see: MIDI files, audio and piano-roll pictures.

- ``write_midi``: a standard MIDI file in which any synthesizer plays the right instruments:
  drums on channel 10, every other track on its own channel with a program change.
- ``render_audio``: General MIDI audio. FluidSynth (the ``fluidsynth`` program) with the
  ``fluid-soundfont-gm`` SoundFont when installed (``make setup``); otherwise ``mmmgen.sf2``, a
  small numpy SoundFont player, with the ``TimGM6mb.sf2`` shipped inside the ``pretty_midi``
  wheel. The silent tail is trimmed and the level normalised to -1 dBFS. WAV always; MP3 and
  OGG through ``ffmpeg`` when it is there. Nothing is downloaded.
- ``plot_pianoroll``: a matplotlib picture in bars, one colour per track, drums in a band below.
- ``render_score`` / ``render_file``: all of it for one score, or for every piece of a text file
  (or a MIDI file), which is what ``mmmgen render`` calls.

Heavy libraries (numpy, matplotlib, symusic) are imported inside the functions that need them.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mmmgen.errors import MMMGenError

log = logging.getLogger(__name__)

FORMATS = ("mid", "txt", "wav", "mp3", "ogg", "png")
AUDIO_FORMATS = ("wav", "mp3", "ogg")
SYNTHS = ("auto", "fluidsynth", "numpy", "symusic")
SOUNDFONT_ENV = "MMMGEN_SOUNDFONT"
SYSTEM_SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
INSTALL_SOUNDFONT = "sudo apt-get install fluid-soundfont-gm"
MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".smf")
DRUM_CHANNEL = 9  # channel 10, counted from 1
PEAK_DBFS = -1.0  # normalised level
TAIL_DB = -60.0  # the tail is trimmed where the sound stays this far below the peak
FLUIDSYNTH_GAIN = 0.5


class RenderError(MMMGenError):
    """A rendering request that cannot be met (unknown format, missing input or SoundFont)."""


# --- input ---------------------------------------------------------------------------------------
def read_pieces(path: str | Path) -> list[str]:
    """MMM pieces from a text file, one per non-empty line."""
    path = Path(path)
    if not path.is_file():
        msg = f"input not found: {path}"
        raise RenderError(msg)
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


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
    from mmmgen.codec import Piece, piece_to_score, text_to_score

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


# --- SoundFonts and synthesizers -----------------------------------------------------------------
def bundled_soundfont() -> Path | None:
    """``TimGM6mb.sf2`` from the installed ``pretty_midi`` package (found without importing it)."""
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "TimGM6mb.sf2"
    return path if path.is_file() else None


def find_soundfont(soundfont: str | Path | None = None) -> Path:
    """The General MIDI SoundFont to play with.

    In order: ``soundfont``, ``$MMMGEN_SOUNDFONT``, the system's (``fluid-soundfont-gm``:
    ``/usr/share/sounds/sf2/FluidR3_GM.sf2``), then ``pretty_midi``'s small ``TimGM6mb.sf2``.
    """
    chosen = soundfont or os.environ.get(SOUNDFONT_ENV) or None
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            origin = "" if soundfont else f" (from ${SOUNDFONT_ENV})"
            msg = (f"SoundFont not found: {path}{origin}; install the General MIDI SoundFont with "
                   f"`{INSTALL_SOUNDFONT}` (or `make setup`) or name an existing .sf2 file")  # fmt: skip
            raise RenderError(msg)
        return path
    for candidate in SYSTEM_SOUNDFONTS:
        if Path(candidate).is_file():
            return Path(candidate)
    bundled = bundled_soundfont()
    if bundled is not None:
        log.info("using pretty_midi's TimGM6mb.sf2 (for better sound: %s)", INSTALL_SOUNDFONT)
        return bundled
    msg = (f"no General MIDI SoundFont found: install one with `{INSTALL_SOUNDFONT}` (or `make setup`), "
           f"or `pip install pretty_midi` for a small one, or set {SOUNDFONT_ENV}=/path/to/file.sf2")  # fmt: skip
    raise RenderError(msg)


def choose_synth(synth: str = "auto") -> str:
    """``fluidsynth`` when asked for or, with ``auto``, when the program is installed; else ``numpy``."""
    if synth not in SYNTHS:
        msg = f"unknown synth {synth!r}; choose from {list(SYNTHS)}"
        raise RenderError(msg)
    if synth == "auto":
        return "fluidsynth" if shutil.which("fluidsynth") else "numpy"
    if synth == "fluidsynth" and not shutil.which("fluidsynth"):
        msg = "the fluidsynth program is not installed: sudo apt-get install fluidsynth (or `make setup`), or use synth='numpy'"
        raise RenderError(msg)
    return synth


def score_end_seconds(score) -> float:
    """When the last note of a score ends, in seconds."""
    sec = as_score(score).to("second")
    return max((float((n["time"] + n["duration"]).max()) for n in (t.notes.numpy() for t in sec.tracks) if len(n["time"])), default=0.0)


def _synth_fluidsynth(score, soundfont: Path, sample_rate: int):
    with tempfile.TemporaryDirectory(prefix="mmmgen-render-") as tmp:
        mid, wav = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        write_midi(score, mid)
        cmd = ["fluidsynth", "-ni", "-q", "-T", "wav", "-O", "float", "-F", str(wav), "-r", str(int(sample_rate)),
               "-g", str(FLUIDSYNTH_GAIN), str(soundfont), str(mid)]  # fmt: skip
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            msg = f"fluidsynth failed: {exc}"
            raise RenderError(msg) from exc
        if done.returncode != 0 or not wav.is_file():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            msg = f"fluidsynth failed (exit {done.returncode}): {' | '.join(tail) or 'no output'}"
            raise RenderError(msg)
        audio, rate = read_wav(wav)
    return audio, rate


def _synth_numpy(score, soundfont: Path, sample_rate: int):
    import numpy as np

    from mmmgen import sf2

    sec = as_score(score).to("second")
    tracks = []
    for track in sec.tracks:
        n = track.notes.numpy()
        rows = np.stack([n["time"], n["duration"], n["pitch"], n["velocity"]], 1) if len(n["time"]) else np.zeros((0, 4))
        tracks.append((int(track.program), bool(track.is_drum), rows))
    try:
        font = sf2.load(str(soundfont))
    except (sf2.SoundFontError, OSError) as exc:
        raise RenderError(str(exc)) from exc
    return font.render(tracks, sample_rate), int(sample_rate)


def _synth_symusic(score, soundfont: Path, sample_rate: int):
    import numpy as np
    import symusic

    try:
        audio = symusic.Synthesizer(str(soundfont), int(sample_rate), 0).render(as_score(score), True)
    except TypeError as exc:  # symusic 0.6.0 cannot hand its Eigen buffer back to Python
        msg = (f"symusic {getattr(symusic, '__version__', '')}'s Synthesizer cannot return its audio to Python "
               f"({exc.__class__.__name__}); use synth='numpy' or synth='fluidsynth'")  # fmt: skip
        raise RenderError(msg) from exc
    audio = np.atleast_2d(np.asarray(audio, np.float32))
    if audio.shape[0] > 2 and audio.shape[1] <= 2:  # (samples, channels)
        audio = audio.T
    return audio, int(sample_rate)


def synthesize(score, soundfont: str | Path | None = None, synth: str = "auto", sample_rate: int = 44100):
    """Raw audio of a score: ``(float32 array (channels, samples), sample_rate, synth used)``.

    Not trimmed nor normalised (``finish_audio`` does that).
    """
    import numpy as np

    name = choose_synth(synth)
    font = find_soundfont(soundfont)
    score = as_score(score)
    if not any(len(t.notes) for t in score.tracks):
        log.warning("the piece has no notes: its audio is silence")
        return np.zeros((2, int(sample_rate // 10)), np.float32), int(sample_rate), name
    fn = {"fluidsynth": _synth_fluidsynth, "numpy": _synth_numpy, "symusic": _synth_symusic}[name]
    audio, rate = fn(score, font, int(sample_rate))
    return np.atleast_2d(np.asarray(audio, np.float32)), rate, name


def finish_audio(audio, sample_rate: int, min_seconds: float = 0.0, peak_dbfs: float = PEAK_DBFS, tail_db: float = TAIL_DB):
    """Trim the silent tail (never before ``min_seconds``), fade the cut, normalise the peak.

    The tail ends where the sound last rises above ``tail_db`` below the peak; a 10 ms fade-out
    avoids a click there. Silence stays silence.
    """
    import numpy as np

    audio = np.atleast_2d(np.asarray(audio, np.float32))
    level = np.abs(audio).max(axis=0) if audio.size else np.zeros(0, np.float32)
    peak = float(level.max()) if level.size else 0.0
    if peak <= 0:
        return audio[:, : max(round(min_seconds * sample_rate), 1)] * 0
    loud = np.flatnonzero(level > peak * 10 ** (tail_db / 20))
    end = max(int(loud[-1]) + 1, math.ceil(min_seconds * sample_rate))
    end = min(end, audio.shape[1])
    audio = audio[:, :end].copy()
    fade = min(int(0.01 * sample_rate), end)
    audio[:, end - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    audio *= np.float32(10 ** (peak_dbfs / 20) / peak)
    return audio


def write_wav(path: str | Path, audio, sample_rate: int) -> Path:
    """16-bit PCM WAV from float audio (channels, samples) in [-1, 1]."""
    import wave

    import numpy as np

    audio = np.atleast_2d(np.asarray(audio, np.float32))
    pcm = np.clip(np.rint(audio.T * 32767.0), -32768, 32767).astype("<i2")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(audio.shape[0])
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
    return path


def read_wav(path: str | Path):
    """``(float32 array (channels, samples), sample_rate)`` of a PCM (8-32 bit) or float WAV."""
    import numpy as np

    data = Path(path).read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        msg = f"not a WAV file: {path}"
        raise RenderError(msg)
    pos, fmt, body = 12, None, None
    while pos + 8 <= len(data):
        cid, size = struct.unpack("<4sI", data[pos : pos + 8])
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", data[pos + 8 : pos + 24])
            if fmt[0] == 0xFFFE and size >= 40:  # WAVE_FORMAT_EXTENSIBLE: the real tag is in the GUID
                fmt = (struct.unpack("<H", data[pos + 32 : pos + 34])[0], *fmt[1:])
        elif cid == b"data":
            body = data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    if fmt is None or body is None:
        msg = f"WAV file without format or data: {path}"
        raise RenderError(msg)
    tag, channels, rate, _, _, bits = fmt
    kinds = {(1, 8): "u1", (1, 16): "<i2", (1, 32): "<i4", (3, 32): "<f4", (3, 64): "<f8"}
    if tag == 1 and bits == 24:
        raw = np.frombuffer(body[: len(body) // 3 * 3], np.uint8).reshape(-1, 3)
        ints = (raw[:, 0].astype(np.int32) | (raw[:, 1].astype(np.int32) << 8) | (raw[:, 2].astype(np.int32) << 16))
        samples = ((ints ^ 0x800000) - 0x800000).astype(np.float32) / 8388608.0
    elif (tag, bits) in kinds:
        arr = np.frombuffer(body[: len(body) // (bits // 8) * (bits // 8)], kinds[(tag, bits)])
        if tag == 3:
            samples = arr.astype(np.float32)
        elif bits == 8:
            samples = (arr.astype(np.float32) - 128.0) / 128.0
        else:
            samples = arr.astype(np.float32) / float(2 ** (bits - 1))
    else:
        msg = f"unsupported WAV encoding (format {tag}, {bits} bits): {path}"
        raise RenderError(msg)
    samples = samples[: len(samples) // channels * channels]
    return samples.reshape(-1, channels).T.copy(), int(rate)


def _ffmpeg(fmt: str) -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        msg = f"{fmt} output needs ffmpeg, which is not installed: sudo apt-get install ffmpeg (or render wav)"
        raise RenderError(msg)
    return exe


def _encode(wav: Path, out: Path) -> Path:
    fmt = out.suffix.lstrip(".").lower()
    codec = {"mp3": ["-codec:a", "libmp3lame", "-q:a", "2"], "ogg": ["-codec:a", "libvorbis", "-q:a", "5"]}[fmt]
    cmd = [_ffmpeg(fmt), "-nostdin", "-y", "-loglevel", "error", "-i", str(wav), *codec, str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        msg = f"ffmpeg could not write {out.name}: {done.stderr.strip()[-300:]}"
        raise RenderError(msg)
    return out


def render_audio(
    score,
    path: str | Path,
    soundfont: str | Path | None = None,
    synth: str = "auto",
    sample_rate: int = 44100,
) -> Path:
    """Render a score to ``path`` (``.wav``; ``.mp3``/``.ogg`` need ffmpeg) with a GM SoundFont.

    Audio lasts at least until the last note ends, plus the sound's own release, with the
    silent tail trimmed and the peak at -1 dBFS (16-bit PCM for WAV).
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in AUDIO_FORMATS:
        msg = f"unknown audio format {path.suffix!r}; choose from {list(AUDIO_FORMATS)}"
        raise RenderError(msg)
    if fmt != "wav":
        _ffmpeg(fmt)
    score = as_score(score)
    audio, rate, name = synthesize(score, soundfont, synth, sample_rate)
    audio = finish_audio(audio, rate, min_seconds=score_end_seconds(score))
    log.debug("rendered %.1f s of audio with %s", audio.shape[1] / rate, name)
    if fmt == "wav":
        return write_wav(path, audio, rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mmmgen-render-") as tmp:
        return _encode(write_wav(Path(tmp) / "audio.wav", audio, rate), path)


# --- piano roll ----------------------------------------------------------------------------------
def bar_ticks(score, end_tick: int | None = None) -> list[int]:
    """Ticks where bars start, from the time signatures (4/4 when none), past ``end_tick``.

    A meter change in the middle of a bar starts a new bar there. The last entry is the end of
    the last bar, so there is always one more entry than bars (and at least one bar).
    """
    tpq = int(score.tpq)
    if end_tick is None:
        ends = [t.notes.numpy() for t in score.tracks if len(t.notes)]
        end_tick = max((int((n["time"] + n["duration"]).max()) for n in ends), default=0)
    changes: dict[int, tuple[int, int]] = {}
    for ts in sorted(score.time_signatures, key=lambda ts: ts.time):
        changes[int(ts.time)] = (int(ts.numerator), int(ts.denominator))
    changes.setdefault(0, changes[min(changes)] if changes else (4, 4))
    times = sorted(changes)
    ticks, i, t = [0], 0, 0
    while True:
        while i + 1 < len(times) and times[i + 1] <= t:
            i += 1
        num, den = changes[times[i]]
        length = max(num * tpq * 4 // den, 1)
        nxt = t + length
        if i + 1 < len(times) and times[i + 1] < nxt:
            nxt = times[i + 1]
        t = nxt
        ticks.append(t)
        if t >= end_tick:
            return ticks


def _tempo_text(score) -> str:
    if not len(score.tempos):
        return "120 BPM"
    qpm = {round(float(t.qpm), 1) for t in score.tempos}
    return f"{min(qpm):g} BPM" if len(qpm) == 1 else f"{min(qpm):g}-{max(qpm):g} BPM"


def plot_pianoroll(
    score,
    path: str | Path,
    title: str | None = None,
    size: tuple[int, int] = (1200, 500),
    dpi: int = 100,
) -> Path:
    """A piano-roll picture of a score (or ``Piece`` or MMM text), ``size`` pixels exactly.

    Time runs in bars (bar lines from the score's meters), pitch upwards; each track has its own
    colour (one ``PolyCollection`` of note rectangles per track) and a legend entry with its GM
    instrument name. Drum hits are crosses in a band of their own below, one row per drum sound.
    """
    import matplotlib
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    from mmmgen.gm import drum_name, instrument_name

    score = as_score(score)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tracks = [(i, t, t.notes.numpy()) for i, t in enumerate(score.tracks)]
    end_tick = max((int((n["time"] + n["duration"]).max()) for _, _, n in tracks if len(n["time"])), default=0)
    bars = np.asarray(bar_ticks(score, end_tick), np.float64)
    n_bars = len(bars) - 1

    def to_bar(ticks):
        return np.interp(ticks, bars, np.arange(len(bars), dtype=np.float64))

    pitched = [(i, t, n) for i, t, n in tracks if not t.is_drum and len(n["time"])]
    drums = [(i, t, n) for i, t, n in tracks if t.is_drum and len(n["time"])]
    fig = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    left, right, bottom, top = 0.085, 0.80, 0.10, 0.90
    if pitched and drums:
        grid = fig.add_gridspec(2, 1, height_ratios=(3, 1), hspace=0.06, left=left, right=right, bottom=bottom, top=top)
        ax_notes = fig.add_subplot(grid[0])
        ax_drums = fig.add_subplot(grid[1], sharex=ax_notes)
    else:
        fig.subplots_adjust(left=left, right=right, bottom=bottom, top=top)
        ax = fig.add_subplot(1, 1, 1)
        ax_notes, ax_drums = (ax, None) if pitched or not drums else (None, ax)
    axes = [a for a in (ax_notes, ax_drums) if a is not None]
    colours = [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]
    colours = colours if len(colours) >= 10 else [*colours, "#7f7f7f", "#bcbd22", "#17becf"]
    handles = []

    if ax_notes is not None:
        low, high = 60, 72
        for i, track, n in pitched:
            colour = colours[i % len(colours)]
            x0, x1 = to_bar(n["time"]), to_bar(n["time"] + n["duration"])
            y = n["pitch"].astype(np.float64)
            verts = np.empty((len(y), 4, 2))
            verts[:, 0, 0] = verts[:, 1, 0] = x0
            verts[:, 2, 0] = verts[:, 3, 0] = np.maximum(x1, x0 + 0.004 * max(n_bars, 1))
            verts[:, 0, 1] = verts[:, 3, 1] = y - 0.42
            verts[:, 1, 1] = verts[:, 2, 1] = y + 0.42
            ax_notes.add_collection(PolyCollection(verts, facecolors=colour, edgecolors="black", linewidths=0.25, alpha=0.9))
            handles.append((i, Patch(facecolor=colour, edgecolor="black", linewidth=0.25, label=f"{i + 1}. {instrument_name(track.program)}")))
            low, high = min(low, int(y.min())), max(high, int(y.max()))
        pad = max(2, (12 - (high - low)) // 2)
        ax_notes.set_ylim(low - pad, high + pad)
        cs = [p for p in range(0, 128, 12) if low - pad <= p <= high + pad]
        ax_notes.set_yticks(cs, [f"C{p // 12 - 1}" for p in cs])
        ax_notes.set_ylabel("pitch")
        if not pitched:
            ax_notes.text(0.5, 0.5, "no notes", transform=ax_notes.transAxes, ha="center", va="center", color="grey")

    if ax_drums is not None:
        keys = sorted({int(p) for _, _, n in drums for p in n["pitch"]})
        row = {k: r for r, k in enumerate(keys)}
        for i, _track, n in drums:
            colour = colours[i % len(colours)]
            ys = np.fromiter((row[int(p)] for p in n["pitch"]), np.float64, len(n["pitch"]))
            ax_drums.scatter(to_bar(n["time"]), ys, marker="x", s=14, linewidths=0.9, color=colour)
            handles.append((i, Line2D([], [], marker="x", linestyle="", color=colour, label=f"{i + 1}. {instrument_name(0, True)}")))
        ax_drums.set_ylim(-0.8, len(keys) - 0.2)
        most = 10 if ax_notes is not None else 24
        shown = keys if len(keys) <= most else keys[:: math.ceil(len(keys) / most)]
        ax_drums.hlines(np.arange(len(keys)), 0, 1, transform=ax_drums.get_yaxis_transform(), colors="#e2e2e2", linewidths=0.4, zorder=0)
        ax_drums.set_yticks([row[k] for k in shown], [drum_name(k) for k in shown], fontsize=6)
        ax_drums.set_facecolor("#f4f4f4")

    for a in axes:
        a.set_xlim(-0.004 * max(n_bars, 1), max(n_bars, 1))  # room for a hit on the first beat
        a.vlines(np.arange(n_bars + 1), 0, 1, transform=a.get_xaxis_transform(), colors="#999999", linewidths=0.6, zorder=0)
        if n_bars <= 32:  # beat lines
            beats = [b for k in range(n_bars) for b in np.arange(bars[k], bars[k + 1], score.tpq)[1:]]
            a.vlines(to_bar(np.asarray(beats)), 0, 1, transform=a.get_xaxis_transform(), colors="#e3e3e3", linewidths=0.4, zorder=0)
        a.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=min(n_bars, 24) or 1))
        a.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{int(x) + 1}" if x < n_bars else ""))
    for a in axes[:-1]:
        a.tick_params(labelbottom=False)
    axes[-1].set_xlabel("bar")
    meters = sorted({(int(ts.numerator), int(ts.denominator)) for ts in score.time_signatures}) or [(4, 4)]
    info = f"{n_bars} bar{'s' * (n_bars != 1)} · {', '.join(f'{a}/{b}' for a, b in meters)} · {_tempo_text(score)}"
    axes[0].set_title(f"{title} — {info}" if title else info, fontsize=10, loc="left")
    if handles:
        fig.legend(handles=[h for _, h in sorted(handles, key=lambda ih: ih[0])], loc="upper left", bbox_to_anchor=(right + 0.01, top), fontsize=8, frameon=False)
    fig.savefig(str(path), dpi=dpi)
    return path


# --- everything at once --------------------------------------------------------------------------
def parse_formats(formats: str | Sequence[str]) -> list[str]:
    """Validated output formats from ``'mid,wav,png'`` or a list; checks ffmpeg for mp3/ogg."""
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    chosen = list(dict.fromkeys(f.strip().lower().lstrip(".") for f in items if f.strip()))
    unknown = sorted(set(chosen) - set(FORMATS))
    if unknown:
        msg = f"unknown format(s) {unknown}; choose from {list(FORMATS)}"
        raise RenderError(msg)
    if not chosen:
        msg = f"no output format given; choose from {list(FORMATS)}"
        raise RenderError(msg)
    for fmt in chosen:
        if fmt in ("mp3", "ogg"):
            _ffmpeg(fmt)
    return chosen


def render_score(
    score,
    out_stem: str | Path,
    formats: str | Sequence[str] = ("mid",),
    soundfont: str | Path | None = None,
    synth: str = "auto",
    sample_rate: int = 44100,
    title: str | None = None,
    text: str | None = None,
) -> list[Path]:
    """Write ``out_stem.<fmt>`` for each format; the audio is synthesised once for all audio formats.

    ``txt`` writes ``text`` when given, else the score's MMM windows (one per line).
    """
    formats = parse_formats(formats)
    if any(f in AUDIO_FORMATS for f in formats):  # fail early, before writing anything
        choose_synth(synth)
        find_soundfont(soundfont)
    score = as_score(score)
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fmt in (f for f in FORMATS if f in formats and f not in AUDIO_FORMATS):
        path = out_stem.with_name(f"{out_stem.name}.{fmt}")
        if fmt == "mid":
            written.append(write_midi(score, path))
        elif fmt == "txt":
            if text is None:
                from mmmgen.codec import score_to_texts

                text = "\n".join(score_to_texts(score))
            path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
            written.append(path)
        elif fmt == "png":
            written.append(plot_pianoroll(score, path, title=title))
    audio_formats = [f for f in AUDIO_FORMATS if f in formats]
    if audio_formats:
        audio, rate, _ = synthesize(score, soundfont, synth, sample_rate)
        audio = finish_audio(audio, rate, min_seconds=score_end_seconds(score))
        with tempfile.TemporaryDirectory(prefix="mmmgen-render-") as tmp:
            wav = write_wav(out_stem.with_name(f"{out_stem.name}.wav") if "wav" in formats else Path(tmp) / "a.wav", audio, rate)
            if "wav" in formats:
                written.append(wav)
            written += [_encode(wav, out_stem.with_name(f"{out_stem.name}.{f}")) for f in audio_formats if f != "wav"]
    return written


def render_file(
    input_path: str | Path,
    out_dir: str | Path,
    formats: str | Sequence[str] = ("mid",),
    tempo: float | None = None,
    grid: int = 12,
    soundfont: str | Path | None = None,
    synth: str = "auto",
    sample_rate: int = 44100,
) -> list[Path]:
    """Render a text file of MMM pieces (one per line -> ``0000.<fmt>``, ``0001.<fmt>``, ...) or a
    MIDI file (-> ``<its stem>.<fmt>``) into ``out_dir``.

    ``tempo`` (BPM) replaces the text's ``BPM=`` or the MIDI file's tempo map; without it, text
    plays at its ``BPM=`` or 120 BPM and MIDI at its own tempo. Velocities come from the text's
    ``VELOCITY`` words, else 80.
    """
    formats = parse_formats(formats)
    out_dir = Path(out_dir)
    input_path = Path(input_path)
    if not input_path.is_file():
        msg = f"input not found: {input_path}"
        raise RenderError(msg)
    if is_midi_file(input_path):
        score = load_midi(input_path, tempo)
        if "mid" in formats and (out_dir / f"{input_path.stem}.mid").resolve() == input_path.resolve():
            log.warning("not rewriting the input %s over itself", input_path)
            formats = [f for f in formats if f != "mid"]
            if not formats:
                return []
        return render_score(score, out_dir / input_path.stem, formats, soundfont, synth, sample_rate, title=input_path.name)
    pieces = read_pieces(input_path)
    if not pieces:
        msg = f"no MMM pieces in {input_path} (expected one piece per line)"
        raise RenderError(msg)
    from mmmgen.codec import text_to_piece

    written: list[Path] = []
    for i, text in enumerate(pieces):
        piece = text_to_piece(text, grid=grid)
        if piece.issues:
            log.warning("piece %d: skipped %s", i, dict(piece.issues))
        score = as_score(piece, grid=grid, tempo=tempo)
        written += render_score(score, out_dir / f"{i:04d}", formats, soundfont, synth, sample_rate,
                                title=f"{input_path.name} #{i}", text=text)  # fmt: skip
    return written
