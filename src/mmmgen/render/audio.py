"""Audio from scores: SoundFont discovery, synthesis (FluidSynth, the numpy player in sf2.py), WAV/MP3/OGG."""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from mmmgen.errors import RenderError
from mmmgen.render.midi import as_score, write_midi

log = logging.getLogger(__name__)

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
PEAK_DBFS = -1.0  # normalised level
TAIL_DB = -60.0  # the tail is trimmed where the sound stays this far below the peak
FLUIDSYNTH_GAIN = 0.5


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


def dies_with_parent(cmd: list[str]) -> list[str]:
    """``cmd`` run so that it is killed when the thread that started it ends (Linux ``setpriv
    --pdeathsig KILL``, where installed; as is elsewhere). A render or an encode outlives a killed
    app otherwise and keeps a core busy with nobody to read its output; ``preexec_fn`` would do it
    in Python, but is unsafe in a threaded program such as the app."""
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return [setpriv, "--pdeathsig", "KILL", "--", *cmd] if setpriv else list(cmd)


def _synth_fluidsynth(score, soundfont: Path, sample_rate: int):
    with tempfile.TemporaryDirectory(prefix="mmmgen-render-") as tmp:
        mid, wav = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        write_midi(score, mid)
        cmd = ["fluidsynth", "-ni", "-q", "-T", "wav", "-O", "float", "-F", str(wav), "-r", str(int(sample_rate)),
               "-g", str(FLUIDSYNTH_GAIN), str(soundfont), str(mid)]  # fmt: skip
        try:
            done = subprocess.run(dies_with_parent(cmd), capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
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

    from mmmgen.render import sf2

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


def require_ffmpeg(fmt: str) -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        msg = f"{fmt} output needs ffmpeg, which is not installed: sudo apt-get install ffmpeg (or render wav)"
        raise RenderError(msg)
    return exe


def encode_audio(wav: Path, out: Path) -> Path:
    fmt = out.suffix.lstrip(".").lower()
    codec = {"mp3": ["-codec:a", "libmp3lame", "-q:a", "2"], "ogg": ["-codec:a", "libvorbis", "-q:a", "5"]}[fmt]
    cmd = [require_ffmpeg(fmt), "-nostdin", "-y", "-loglevel", "error", "-i", str(wav), *codec, str(out)]
    done = subprocess.run(dies_with_parent(cmd), capture_output=True, text=True, timeout=600)
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
        require_ffmpeg(fmt)
    score = as_score(score)
    audio, rate, name = synthesize(score, soundfont, synth, sample_rate)
    audio = finish_audio(audio, rate, min_seconds=score_end_seconds(score))
    log.debug("rendered %.1f s of audio with %s", audio.shape[1] / rate, name)
    if fmt == "wav":
        return write_wav(path, audio, rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mmmgen-render-") as tmp:
        return encode_audio(write_wav(Path(tmp) / "audio.wav", audio, rate), path)
