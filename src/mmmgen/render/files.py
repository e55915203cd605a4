"""MMM text becomes something to hear and see: MIDI files, audio and piano-roll pictures.

- ``write_midi``: a standard MIDI file in which any synthesizer plays the right instruments:
  drums on channel 10, every other track on its own channel with a program change.
- ``render_audio``: General MIDI audio. FluidSynth (the ``fluidsynth`` program) with the
  ``fluid-soundfont-gm`` SoundFont when installed (``make setup``); otherwise ``mmmgen.render.sf2``, a
  small numpy SoundFont player, with the ``TimGM6mb.sf2`` shipped inside the ``pretty_midi``
  wheel. The silent tail is trimmed and the level normalised to -1 dBFS. WAV always; MP3 and
  OGG through ``ffmpeg`` when it is there. Nothing is downloaded.
- ``plot_pianoroll``: a matplotlib picture in bars, one colour per track, drums in a band below.
- ``render_score`` / ``render_file``: all of it for one score, or for every piece of a text file
  (or a MIDI file), which is what ``mmmgen render`` calls.

The work is split by stage: ``render/midi.py`` (MIDI in and out), ``render/audio.py``
(SoundFonts, synthesizers, WAV/MP3/OGG) and ``render/pianoroll.py`` (pictures); this module ties
them together and re-exports their public names, so ``from mmmgen.render import ...`` keeps
working. Heavy libraries (numpy, matplotlib, symusic) are imported inside the functions that
need them.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mmmgen.errors import RenderError
from mmmgen.render.audio import (
    AUDIO_FORMATS,
    FLUIDSYNTH_GAIN,
    INSTALL_SOUNDFONT,
    PEAK_DBFS,
    SOUNDFONT_ENV,
    SYNTHS,
    SYSTEM_SOUNDFONTS,
    TAIL_DB,
    bundled_soundfont,
    choose_synth,
    encode_audio,
    find_soundfont,
    finish_audio,
    read_wav,
    render_audio,
    require_ffmpeg,
    score_end_seconds,
    synthesize,
    write_wav,
)
from mmmgen.render.midi import (
    DRUM_CHANNEL,
    MIDI_SUFFIXES,
    as_score,
    assign_channels,
    is_midi_file,
    load_midi,
    midi_bytes,
    write_midi,
)
from mmmgen.render.pianoroll import bar_ticks, plot_pianoroll

__all__ = [
    "AUDIO_FORMATS",
    "DRUM_CHANNEL",
    "FLUIDSYNTH_GAIN",
    "FORMATS",
    "INSTALL_SOUNDFONT",
    "MIDI_SUFFIXES",
    "PEAK_DBFS",
    "SOUNDFONT_ENV",
    "SYNTHS",
    "SYSTEM_SOUNDFONTS",
    "TAIL_DB",
    "RenderError",
    "as_score",
    "assign_channels",
    "bar_ticks",
    "bundled_soundfont",
    "choose_synth",
    "encode_audio",
    "find_soundfont",
    "finish_audio",
    "is_midi_file",
    "load_midi",
    "midi_bytes",
    "parse_formats",
    "plot_pianoroll",
    "read_pieces",
    "read_wav",
    "render_audio",
    "render_file",
    "render_score",
    "require_ffmpeg",
    "score_end_seconds",
    "synthesize",
    "write_midi",
    "write_wav",
]

log = logging.getLogger(__name__)

FORMATS = ("mid", "txt", "wav", "mp3", "ogg", "png")


# --- input ---------------------------------------------------------------------------------------
def read_pieces(path: str | Path) -> list[str]:
    """MMM pieces from a text file, one per non-empty line."""
    path = Path(path)
    if not path.is_file():
        msg = f"input not found: {path}"
        raise RenderError(msg)
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


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
            require_ffmpeg(fmt)
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
                from mmmgen.text.encode import score_to_texts

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
            written += [encode_audio(wav, out_stem.with_name(f"{out_stem.name}.{f}")) for f in audio_formats if f != "wav"]
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
    """Render a text file of MMM pieces or a MIDI file into ``out_dir``: a MIDI file or a text of one
    piece (``piece.txt``) -> ``<its stem>.<fmt>``; a text of several (one per line) -> ``0000.<fmt>``,
    ``0001.<fmt>``, ...

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
    from mmmgen.text.decode import text_to_piece

    written: list[Path] = []
    for i, text in enumerate(pieces):
        piece = text_to_piece(text, grid=grid)
        if piece.issues:
            log.warning("piece %d: repaired or skipped %s", i, dict(piece.issues))
        score = as_score(piece, grid=grid, tempo=tempo)
        stem = input_path.stem if len(pieces) == 1 else f"{i:04d}"
        if "txt" in formats and (out_dir / f"{stem}.txt").resolve() == input_path.resolve():
            log.warning("not rewriting the input %s over itself", input_path)
            formats = [f for f in formats if f != "txt"]
            if not formats:
                return []
        written += render_score(score, out_dir / stem, formats, soundfont, synth, sample_rate,
                                title=f"{input_path.name} #{i}", text=text)  # fmt: skip
    return written
