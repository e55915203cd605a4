"""Shared fixtures: a tiny prepared dataset, its tokenizer and a trained debug run folder.

They are session-scoped and built once from synthetic MIDI (nothing is downloaded): later tests
(generation, app) can load ``debug_run`` with ``mmmgen.model.run.load_run``.
"""

from __future__ import annotations

import contextlib
import os
import random

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: idle threads sleep (config/threads.py)

SCALE = (60, 62, 64, 65, 67, 69, 71, 72)
TINY_GENRES = ("POP", "ROCK")


def tiny_score(seed: int, n_bars: int = 16):
    """A melody in quarters over a bass in halves (and drums on even seeds): a few hundred words per window."""
    from synth import make_score

    rng = random.Random(seed)
    melody = [(rng.choice(SCALE) + 12 * (seed % 2), q, 1.0) for q in range(4 * n_bars)]
    bass = [(rng.choice(SCALE) - 24, 2.0 * h, 2.0) for h in range(2 * n_bars)]
    tracks = [(rng.choice((0, 24, 73)), False, melody), (33, False, bass)]
    if seed % 2 == 0:
        tracks.append((0, True, [(36 if q % 2 == 0 else 38, float(q), 0.25) for q in range(4 * n_bars)]))
    return make_score(tracks)


def write_tiny_midi(folder, n_files: int = 16, n_bars: int = 16) -> str:
    """``n_files`` synthetic MIDI files plus a ``genres.csv`` (POP/ROCK) under ``folder``."""
    from synth import write

    lines = ["path,genre"]
    for i in range(n_files):
        write(tiny_score(i, n_bars), folder / f"song{i:02d}.mid")
        lines.append(f"song{i:02d}.mid,{TINY_GENRES[i % 2]}")
    (folder / "genres.csv").write_text("\n".join(lines) + "\n")
    return str(folder / "genres.csv")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A prepared dataset (``mmmgen.data.prepare``) of 8-bar windows from 16 synthetic files."""
    from mmmgen.config import PrepareConfig
    from mmmgen.data.prepare import prepare

    midi = tmp_path_factory.mktemp("tiny_midi")
    genres = write_tiny_midi(midi)
    out = tmp_path_factory.mktemp("tiny") / "dataset"
    prepare(midi, out, PrepareConfig(genres=genres, test_size=0.25, num_proc=1))
    return out


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_dataset, tmp_path_factory):
    """The folder of a tokenizer trained on ``tiny_dataset``."""
    from mmmgen.model.tokenizer import train_tokenizer

    out = tmp_path_factory.mktemp("tiny_tok") / "tokenizer"
    train_tokenizer(tiny_dataset, out)
    return out


def debug_config(dataset, tokenizer, output_dir, **overrides):
    """The ``TrainConfig`` of the debug run (30 steps of the debug preset, evaluation every 10)."""
    from mmmgen.config import TrainConfig

    values = dict(dataset=str(dataset), tokenizer=str(tokenizer), output_dir=str(output_dir), preset="debug",
                  max_steps=30, eval_steps=10, save_steps=10, logging_steps=1, report_to="none",
                  sample_tracks=1, sample_max_tokens=24, threads=1)  # tiny models: one thread (one_thread())
    return TrainConfig(**{**values, **overrides})


@contextlib.contextmanager
def one_thread():
    """Tiny models train fastest on one thread, and far faster when other processes load the CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def debug_run(tiny_dataset, tiny_tokenizer, tmp_path_factory):
    """A finished debug run folder: ``load_run(debug_run)`` gives ``(model, tokenizer, settings)``."""
    from mmmgen.model.train import train

    out = tmp_path_factory.mktemp("debug_run") / "run"
    with one_thread():
        return train(debug_config(tiny_dataset, tiny_tokenizer, out))


@pytest.fixture(scope="module")
def untrained():
    """``(model, tokenizer)`` of a tiny untrained GPT-2 (``tiny.untrained_model``), once per module."""
    from tiny import untrained_model

    return untrained_model()


@pytest.fixture
def generator(untrained):
    """A ``Generator`` over ``untrained``."""
    from mmmgen.generate.song import Generator

    return Generator(*untrained)
