"""The ``mmmgen`` command: help, one-line errors, YAML configs, prepare and render end to end."""

from __future__ import annotations

import os
import subprocess
import sys

from synth import random_score, write

from mmmgen.cli import main
from mmmgen.text.encode import score_to_texts


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "mmmgen", *args], capture_output=True, text=True, env=env, timeout=120)


def test_help_lists_the_pipeline():
    out = run("--help")
    assert out.returncode == 0
    for command in ("corpus", "prepare", "render"):
        assert command in out.stdout
    assert "--min-notes" in run("prepare", "--help").stdout


def test_missing_folder_is_one_line_and_exit_2(tmp_path):
    out = run("prepare", str(tmp_path / "missing"), str(tmp_path / "out"))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == f"mmmgen prepare: error: MIDI folder not found: {tmp_path / 'missing'}"


def test_bad_flag_value_is_a_usage_error(tmp_path):
    out = run("prepare", str(tmp_path), str(tmp_path / "o"), "--bars", "0")
    assert out.returncode == 2 and "--bars must be at least 1" in out.stderr


def test_prepare_from_yaml_config_flags_win(tmp_path, capsys):
    for i in range(3):
        write(random_score(i, n_bars=8), tmp_path / "midi" / f"{i}.mid")
    (tmp_path / "c.yaml").write_text("bars: 2\ntest_size: 0.0\nnum_proc: 1\n")
    assert main(["prepare", str(tmp_path / "midi"), str(tmp_path / "ds"), "--config", str(tmp_path / "c.yaml"), "--bars", "4"]) == 0
    out = capsys.readouterr().out
    assert "files: 3 found, 3 kept, 0 skipped" in out
    import json

    assert json.loads((tmp_path / "ds" / "report.json").read_text())["codec"]["bars"] == 4


def test_unknown_yaml_key_is_rejected(tmp_path):
    (tmp_path / "c.yaml").write_text("barz: 2\n")
    out = run("prepare", str(tmp_path), str(tmp_path / "o"), "--config", str(tmp_path / "c.yaml"))
    assert out.returncode == 2 and "unknown keys ['barz']" in out.stderr


def test_render_writes_one_midi_per_line(tmp_path):
    texts = [score_to_texts(random_score(i, n_bars=2))[0] for i in range(3)]
    (tmp_path / "pieces.txt").write_text("\n".join(texts) + "\n\n")
    out = run("render", str(tmp_path / "pieces.txt"), "--out", str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0000.mid", "0001.mid", "0002.mid"]


def test_unknown_command():
    out = run("bake")
    assert out.returncode == 2 and "unknown command 'bake'" in out.stderr
