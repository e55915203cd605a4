"""Songs that come from files: an uploaded MIDI file, the piece of ``mmmgen app --load``, and the
tempo and drum kit widgets that follow such a song."""

from __future__ import annotations

from pathlib import Path

from mmmgen.app.values import MAX_UPLOAD_BARS, MAX_UPLOAD_BYTES, SONG_KIT, TEMPO_RANGE, AppSettings
from mmmgen.generate.sampling import GenerationError
from mmmgen.generate.song import Generator, Song
from mmmgen.text import vocab as V


def song_from_midi(file, generator: Generator, settings: AppSettings, tempo: float | None = None) -> Song:
    """Every bar of an uploaded MIDI file (up to ``MAX_UPLOAD_BARS``) as a song (its tracks become the song's)."""
    return song_from_upload(file, settings, tempo)[0]


def song_from_upload(file, settings: AppSettings, tempo: float | None = None) -> tuple[Song, str | None]:
    """``song_from_midi``, and what was cut from the file (None when nothing was). ``tempo`` None keeps
    the file's tempo map; its track names and drum kits are kept too (``Song.meta``)."""
    from mmmgen.data.prepare import load_score
    from mmmgen.generate.prompt import score_song

    path = Path(file if isinstance(file, str) else getattr(file, "name", ""))
    if not path.is_file():
        msg = "no file received"
        raise GenerationError(msg)
    if path.stat().st_size > MAX_UPLOAD_BYTES:
        msg = f"the file is larger than {MAX_UPLOAD_BYTES // 1024 // 1024} MB"
        raise GenerationError(msg)
    codec = {"bars": settings.bars, "grid": settings.grid}
    try:
        return score_song(load_score(path), {"codec": codec, "density_edges": settings.density_edges}, tempo, MAX_UPLOAD_BARS)
    except GenerationError as exc:
        msg = f"the file has {exc}"
        raise GenerationError(msg) from None


def load_song(path: str, settings: AppSettings) -> Song:
    """The piece of ``mmmgen app --load PATH``: MMM text (its first line) or a MIDI file (up to
    ``MAX_UPLOAD_BARS`` bars; its tempo map, track names and drum kits kept)."""
    from mmmgen.generate.prompt import prompt_song

    codec = {"bars": settings.bars, "grid": settings.grid}
    return prompt_song(path, {"codec": codec, "density_edges": settings.density_edges}, None, MAX_UPLOAD_BARS)


def song_widgets(song: Song | None):
    """The tempo slider and drum kit choice after a song came from a file: its tempo, and its own kit
    when it has drums (``gr.update`` each; nothing changes without a song)."""
    import gradio as gr

    if song is None:
        return gr.skip(), gr.skip()
    has_drums = song.meta is not None and any(t.inst == V.inst(0, True) for t in song.meta.tracks)
    tempo = min(max(round(song.tempo), TEMPO_RANGE[0]), TEMPO_RANGE[1])
    return gr.update(value=tempo), gr.update(value=SONG_KIT) if has_drums else gr.skip()
