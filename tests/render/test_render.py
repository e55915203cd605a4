"""Rendering: MIDI channels and tempo, real audio (both synthesizers), piano rolls, the CLI, GM names."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from synth import make_score, random_score, write

from mmmgen.cli import main
from mmmgen.errors import RenderError
from mmmgen.render import files as render
from mmmgen.render import gm
from mmmgen.text.decode import text_to_score
from mmmgen.text.encode import score_to_texts

HAS_FLUIDSYNTH = shutil.which("fluidsynth") is not None
RELEASE_ALLOWANCE = 3.5  # seconds of ringing allowed after the last note ends


def two_bar_text(drums: bool = True) -> str:
    """Two bars of 4/4: piano chords, a bass line to the last beat, drums; ends at 4 s at 120 BPM."""
    piano = [(60, 0, 1), (64, 0, 1), (67, 2, 2), (72, 4, 2), (65, 6, 2)]
    bass = [(36, q, 1) for q in range(8)]
    kit = [(36, q, 0.25) for q in range(0, 8, 2)] + [(38, q, 0.25) for q in range(1, 8, 2)] + [(42, q / 2, 0.25) for q in range(16)]
    tracks = [(0, False, piano), (33, False, bass)] + ([(0, True, kit)] if drums else [])
    return score_to_texts(make_score(tracks))[0]


def soundfont_or_skip():
    try:
        return render.find_soundfont()
    except RenderError as exc:
        pytest.skip(str(exc))


def small_soundfont_or_skip():
    """pretty_midi's 6 MB TimGM6mb.sf2 (fast to load), else whatever GM SoundFont there is."""
    return render.bundled_soundfont() or soundfont_or_skip()


def rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def centroid(audio, rate) -> float:
    mono = audio.mean(axis=0)
    spec = np.abs(np.fft.rfft(mono))
    freqs = np.fft.rfftfreq(len(mono), 1 / rate)
    return float((spec * freqs).sum() / spec.sum())


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


# --- MIDI --------------------------------------------------------------------------------------
def midi_channels(path):
    mido = pytest.importorskip("mido")
    tracks = []
    for track in mido.MidiFile(str(path)).tracks:
        notes = [m for m in track if m.type == "note_on" and m.velocity > 0]
        if not notes:
            continue
        programs = [m for m in track if m.type == "program_change"]
        tracks.append(({m.channel for m in notes}, programs, notes))
    return tracks


def test_midi_puts_drums_on_channel_10_and_each_track_on_its_own_channel(tmp_path):
    text = two_bar_text()
    path = render.write_midi(text_to_score(text), tmp_path / "a.mid")
    tracks = midi_channels(path)
    assert len(tracks) == 3
    (piano_ch, piano_pc, piano_notes), (bass_ch, bass_pc, _), (drum_ch, _, _) = tracks
    assert drum_ch == {9}
    assert len(piano_ch) == len(bass_ch) == 1 and piano_ch != bass_ch and 9 not in piano_ch | bass_ch
    assert [(m.channel, m.program) for m in piano_pc] == [(min(piano_ch), 0)]
    assert [(m.channel, m.program) for m in bass_pc] == [(min(bass_ch), 33)]
    assert {m.velocity for m in piano_notes} == {80}  # the text has no velocities


def test_midi_tempo_comes_from_the_setting(tmp_path):
    mido = pytest.importorskip("mido")
    text = two_bar_text()
    (tmp_path / "p.txt").write_text(text + "\n")
    for tempo, expected in ((None, 500000), (90.0, 666667)):
        out = tmp_path / f"out{tempo}"
        render.render_file(tmp_path / "p.txt", out, ["mid"], tempo=tempo)
        tempos = [m.tempo for t in mido.MidiFile(str(out / "p.mid")).tracks for m in t if m.type == "set_tempo"]  # one piece: p.*
        assert tempos == [expected]


def test_midi_keeps_every_note_and_velocity(tmp_path):
    from symusic import Score

    score = random_score(7, n_bars=4)
    for track in score.tracks:
        for i, note in enumerate(track.notes):
            note.velocity = 20 + i % 100
    back = Score(str(render.write_midi(score, tmp_path / "r.mid")))
    assert [(t.program, t.is_drum) for t in back.tracks] == [(t.program, t.is_drum) for t in score.tracks]
    for a, b in zip(score.tracks, back.tracks, strict=True):
        key = lambda n: (n.time, n.pitch, n.duration, n.velocity)  # noqa: E731
        assert sorted(map(key, a.notes)) == sorted(map(key, b.notes))


def test_channels_beyond_sixteen_tracks_share_by_program():
    tracks = [(p, False) for p in range(15)] + [(0, True), (3, False), (99, False)]
    channels = render.assign_channels(tracks)
    assert channels[:15] == [c for c in range(16) if c != 9]
    assert channels[15] == 9
    assert channels[16] == channels[3]  # same program: same channel
    assert channels[17] != 9


# --- audio -------------------------------------------------------------------------------------
def check_wav(path, piece_seconds: float):
    import wave

    with wave.open(str(path)) as w:
        assert (w.getsampwidth(), w.getnchannels()) == (2, 2), "16-bit stereo PCM"
    audio, rate = render.read_wav(path)
    assert rate == 44100 and audio.shape[0] == 2
    seconds = audio.shape[1] / rate
    assert piece_seconds <= seconds <= piece_seconds + RELEASE_ALLOWANCE, seconds
    assert rms(audio) > 0.02, "silent"
    assert 0.85 < np.abs(audio).max() <= 0.9, "normalised to -1 dBFS"
    first, last = audio[:, : rate // 2], audio[:, int((piece_seconds - 0.5) * rate) : int(piece_seconds * rate)]
    assert rms(first) > 0.01 and rms(last) > 0.005, "sound from the first beat to the last"
    return audio, rate


def test_numpy_synth_renders_the_whole_piece(tmp_path):
    font = small_soundfont_or_skip()
    score = text_to_score(two_bar_text())
    path = render.render_audio(score, tmp_path / "a.wav", soundfont=font, synth="numpy")
    check_wav(path, 4.0)
    slow = render.render_audio(text_to_score(two_bar_text(), tempo=60), tmp_path / "slow.wav", soundfont=font, synth="numpy")
    check_wav(slow, 8.0)


@pytest.mark.skipif(not HAS_FLUIDSYNTH, reason="fluidsynth is not installed (make setup)")
def test_fluidsynth_renders_the_whole_piece(tmp_path):
    score = text_to_score(two_bar_text())
    path = render.render_audio(score, tmp_path / "a.wav", soundfont=soundfont_or_skip(), synth="fluidsynth")
    check_wav(path, 4.0)


@pytest.mark.parametrize("synth", ["numpy", pytest.param("fluidsynth", marks=pytest.mark.skipif(not HAS_FLUIDSYNTH, reason="no fluidsynth"))])
def test_drums_make_drum_sounds(synth):
    font = small_soundfont_or_skip()
    hats = [(42, q / 2, 0.25) for q in range(8)]
    drums, _, _ = render.synthesize(make_score([(0, True, hats)]), font, synth)
    piano, rate, _ = render.synthesize(make_score([(0, False, hats)]), font, synth)
    assert np.abs(drums).max() > 0.01 and rms(drums) > 1e-3, "drums are silent"
    # a closed hi-hat is noise high up; the same key on a piano (F#2) is low: drums really are drums
    assert centroid(drums, rate) > 2 * centroid(piano, rate)


def test_symusic_synth_works_or_says_what_to_use_instead():
    font = small_soundfont_or_skip()
    try:
        audio, _, _ = render.synthesize(make_score([(0, False, [(60, 0, 1)])]), font, "symusic")
    except RenderError as exc:  # symusic 0.6.0's Synthesizer.render cannot return its buffer
        assert "synth='numpy'" in str(exc)
    else:
        assert np.abs(audio).max() > 0.01


def test_finish_audio_trims_the_silent_tail_but_not_the_piece():
    rate = 1000
    audio = np.zeros((2, 10 * rate), np.float32)
    audio[:, : 2 * rate] = 0.25
    done = render.finish_audio(audio, rate, min_seconds=3.0)
    assert done.shape == (2, 3 * rate)
    assert np.isclose(np.abs(done).max(), 10 ** (-1 / 20))
    assert render.finish_audio(np.zeros((2, 100)), rate).max() == 0


def test_missing_soundfont_names_the_install_command(tmp_path, monkeypatch):
    with pytest.raises(RenderError, match="apt-get install fluid-soundfont-gm"):
        render.find_soundfont(tmp_path / "missing.sf2")
    monkeypatch.setenv(render.SOUNDFONT_ENV, str(tmp_path / "also-missing.sf2"))
    with pytest.raises(RenderError, match="apt-get install fluid-soundfont-gm"):
        render.render_audio(make_score([(0, False, [(60, 0, 1)])]), tmp_path / "a.wav")
    monkeypatch.delenv(render.SOUNDFONT_ENV)
    monkeypatch.setattr("mmmgen.render.audio.SYSTEM_SOUNDFONTS", ())
    monkeypatch.setattr("mmmgen.render.audio.bundled_soundfont", lambda: None)
    with pytest.raises(RenderError, match="apt-get install fluid-soundfont-gm"):
        render.find_soundfont()
    assert not (tmp_path / "a.wav").exists()


def test_soundfont_choice_order(tmp_path, monkeypatch):
    fake = tmp_path / "mine.sf2"
    fake.write_bytes(b"RIFF")
    monkeypatch.setenv(render.SOUNDFONT_ENV, str(fake))
    assert render.find_soundfont() == fake
    assert render.find_soundfont(str(fake)) == fake
    monkeypatch.delenv(render.SOUNDFONT_ENV)
    monkeypatch.setattr("mmmgen.render.audio.SYSTEM_SOUNDFONTS", (str(tmp_path / "none.sf2"), str(fake)))
    assert render.find_soundfont() == fake


def test_a_file_that_is_no_soundfont_is_a_render_error(tmp_path):
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"not a soundfont at all")
    with pytest.raises(RenderError, match="not a SoundFont"):
        render.render_audio(make_score([(0, False, [(60, 0, 1)])]), tmp_path / "a.wav", soundfont=bad, synth="numpy")


def test_compressed_formats_need_ffmpeg(tmp_path):
    font = small_soundfont_or_skip()
    score = make_score([(0, False, [(60, 0, 1)])])
    if shutil.which("ffmpeg") is None:
        with pytest.raises(RenderError, match="ffmpeg"):
            render.render_score(score, tmp_path / "a", ["mid", "mp3"], soundfont=font, synth="numpy")
        assert not (tmp_path / "a.mid").exists(), "nothing written before the error"
    else:
        written = render.render_score(score, tmp_path / "a", ["ogg", "mp3"], soundfont=font, synth="numpy")
        assert {p.suffix for p in written} == {".ogg", ".mp3"} and all(p.stat().st_size > 1000 for p in written)


def test_unknown_format_and_synth():
    with pytest.raises(RenderError, match="unknown format"):
        render.parse_formats("mid,flac")
    with pytest.raises(RenderError, match="unknown synth"):
        render.choose_synth("timidity")


def test_temporary_files_are_removed(tmp_path, monkeypatch):
    font = small_soundfont_or_skip()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    render.render_score(make_score([(0, False, [(60, 0, 1)])]), tmp_path / "out" / "a", "mid,wav,png", soundfont=font)
    assert list(scratch.iterdir()) == []


# --- piano roll --------------------------------------------------------------------------------
def test_pianoroll_is_the_requested_size(tmp_path):
    text = two_bar_text()
    assert png_size(render.plot_pianoroll(text_to_score(text), tmp_path / "a.png")) == (1200, 500)
    assert png_size(render.plot_pianoroll(text, tmp_path / "b.png", title="x", size=(800, 300))) == (800, 300)
    drums_only = make_score([(0, True, [(36, 0, 1), (42, 1, 0.5)])])
    assert png_size(render.plot_pianoroll(drums_only, tmp_path / "c.png")) == (1200, 500)
    assert png_size(render.plot_pianoroll(make_score([]), tmp_path / "d.png")) == (1200, 500)


def test_bar_lines_follow_the_meter():
    score = make_score([(0, False, [(60, 0, 1), (62, 11, 1)])], meters=[(0, 3, 4), (7, 4, 4)])
    # 3/4 bars of 3 quarters; the change at quarter 7 cuts the third bar short; then 4/4
    assert [t // 480 for t in render.bar_ticks(score)] == [0, 3, 6, 7, 11, 15]


def test_pianoroll_of_2000_notes_is_fast(tmp_path, capsys):
    import time

    rng = np.random.default_rng(0)
    tracks = []
    for program, is_drum in ((0, False), (33, False), (48, False), (0, True)):
        pitches = rng.choice([36, 38, 42, 46, 49], 500) if is_drum else rng.integers(36, 85, 500)
        tracks.append((program, is_drum, [(int(p), float(t), 0.5) for p, t in zip(pitches, rng.uniform(0, 256, 500), strict=True)]))
    score = make_score(tracks)
    render.plot_pianoroll(make_score([(0, False, [(60, 0, 1)])]), tmp_path / "warm.png")
    t0 = time.perf_counter()
    render.plot_pianoroll(score, tmp_path / "big.png")
    with capsys.disabled():
        print(f"\npiano roll of {sum(len(t.notes) for t in score.tracks)} notes: {time.perf_counter() - t0:.2f} s")


# --- the whole thing and the CLI ---------------------------------------------------------------
def test_cli_renders_text_to_mid_wav_png(tmp_path, capsys):
    font = small_soundfont_or_skip()
    (tmp_path / "pieces.txt").write_text(two_bar_text() + "\n\n" + two_bar_text(drums=False) + "\n")
    out = tmp_path / "out"
    code = main(["render", str(tmp_path / "pieces.txt"), "--out", str(out), "--format", "mid,wav,png", "--soundfont", str(font), "--synth", "numpy"])
    assert code == 0
    assert "wrote 6 files" in capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names == ["0000.mid", "0000.png", "0000.wav", "0001.mid", "0001.png", "0001.wav"]
    check_wav(out / "0000.wav", 4.0)
    assert png_size(out / "0001.png") == (1200, 500)


def test_cli_renders_a_midi_file(tmp_path, capsys):
    soundfont_or_skip()
    score = random_score(3, n_bars=2)
    src = write(score, tmp_path / "in" / "song.mid")
    out = tmp_path / "out"
    assert main(["render", str(src), "--out", str(out), "--format", "mid,wav,png"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["song.mid", "song.png", "song.wav"]
    check_wav(out / "song.wav", render.score_end_seconds(score))
    tracks = midi_channels(out / "song.mid")
    assert all(ch == {9} for ch, _, _ in tracks if 9 in ch)
    assert len({min(ch) for ch, _, _ in tracks}) == len(tracks)


def test_cli_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "p.txt").write_text(two_bar_text() + "\n")
    assert main(["render", str(tmp_path / "p.txt"), "--out", str(tmp_path / "o"), "--format", "mid,flac"]) == 2
    assert "unknown format(s) ['flac']" in capsys.readouterr().err
    assert main(["render", str(tmp_path / "p.txt"), "--out", str(tmp_path / "o"), "--format", "wav", "--soundfont", str(tmp_path / "no.sf2")]) == 2
    assert "apt-get install fluid-soundfont-gm" in capsys.readouterr().err


# --- General MIDI names ------------------------------------------------------------------------
def test_gm_names():
    assert len(gm.GM_PROGRAMS) == 128 and len(set(gm.GM_PROGRAMS)) == 128
    assert gm.instrument_name(0) == "Acoustic Grand Piano"
    assert gm.instrument_name(33) == "Electric Bass (finger)"
    assert gm.instrument_name(127) == "Gunshot"
    assert gm.instrument_name(5, is_drum=True) == "Drums"
    assert gm.drum_name(42) == "Closed Hi-Hat"
    with pytest.raises(ValueError):
        gm.instrument_name(128)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Acoustic Grand Piano", (0, False)),
        ("acoustic grand piano", (0, False)),
        ("ELECTRIC_BASS_(FINGER)", (33, False)),
        ("violin", (40, False)),
        ("33", (33, False)),
        (40, (40, False)),
        ("DRUMS", (0, True)),
        ("drum kit", (0, True)),
        ("INST=DRUMS", (0, True)),
        ("INST=24", (24, False)),
        ("harpsi", (6, False)),
    ],
)
def test_program_from_name(name, expected):
    assert gm.program_from_name(name) == expected


def test_program_from_name_suggests_close_names():
    with pytest.raises(ValueError, match="Violin"):
        gm.program_from_name("violn")
    with pytest.raises(ValueError, match="Acoustic Grand Piano"):
        gm.program_from_name("piano")  # ambiguous: lists the pianos
    with pytest.raises(ValueError):
        gm.program_from_name("128")
    with pytest.raises(ValueError):
        gm.program_from_name("kazoo-zzz")


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has stopped running


@pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("setpriv"), reason="needs Linux setpriv")
def test_a_render_program_dies_with_the_process_that_started_it(tmp_path):
    """A fluidsynth or ffmpeg run by a killed app must not keep a core busy (it once slowed a CI run)."""
    from mmmgen.render.audio import dies_with_parent

    pidfile = tmp_path / "pid"
    code = ("import subprocess, time; from mmmgen.render.audio import dies_with_parent; "
            f"p = subprocess.Popen(dies_with_parent(['sleep', '60'])); open({str(pidfile)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code])
    for _ in range(200):
        if pidfile.exists() and pidfile.read_text():
            break
        time.sleep(0.05)
    child = int(pidfile.read_text())
    assert _running(child)
    parent.kill()
    parent.wait()
    for _ in range(100):
        if not _running(child):
            break
        time.sleep(0.05)
    assert not _running(child)
    assert dies_with_parent(["x"])[-1] == "x"
