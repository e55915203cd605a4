"""Settings of ``mmmgen prepare``: the codec (grid, bars, density levels) and the dataset."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field


@dataclass
class CodecConfig:
    """How MIDI becomes MMM text (stored with each dataset so later stages use the same)."""

    grid: int = field(
        default=12,
        metadata={"help": "Time steps per quarter note. 12 holds sixteenths and triplets exactly."},
    )
    bars: int = field(default=8, metadata={"help": "Bars per window (one training example)."})
    hop: int | None = field(
        default=None, metadata={"help": "Bars between window starts (default: --bars, no overlap)."}
    )
    min_notes: int = field(default=1, metadata={"help": "Drop windows with fewer notes."})
    density_levels: int = field(
        default=10, metadata={"help": "DENSITY levels (quantile bins of notes per track)."}
    )
    chords: bool = field(
        default=False,
        metadata={"help": "Write a chord track first in every window (INST=CHORDS: the file's chord symbols, else the chords read "
                          "from its notes), so a model learns music given harmony."},
    )
    chords_share: float = field(
        default=1.0,
        metadata={"help": "With --chords: the share of files (a fixed draw by file name) whose windows get the chord track; "
                          "the others keep none, so the model also learns songs without chords (a user's MIDI mostly has none)."},
    )

    def __post_init__(self) -> None:
        if self.grid < 1 or 480 % self.grid:
            msg = f"--grid must divide 480 (e.g. 4, 12, 24), got {self.grid}"
            raise ValueError(msg)
        if self.bars < 1:
            msg = f"--bars must be at least 1, got {self.bars}"
            raise ValueError(msg)
        if self.hop is not None and self.hop < 1:
            msg = f"--hop must be at least 1, got {self.hop}"
            raise ValueError(msg)
        if not 0 <= self.chords_share <= 1:
            msg = f"--chords-share must be in [0, 1], got {self.chords_share}"
            raise ValueError(msg)
        if self.density_levels < 1:
            msg = f"--density-levels must be at least 1, got {self.density_levels}"
            raise ValueError(msg)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PrepareConfig(CodecConfig):
    """``mmmgen prepare MIDI_DIR OUT_DIR``: MIDI folder -> windows -> HF dataset."""

    genres: str | None = field(
        default=None, metadata={"help": "CSV with columns path,genre (paths relative to MIDI_DIR)."}
    )
    test_size: float = field(default=0.1, metadata={"help": "Share of source files in the test split."})
    seed: int = field(default=42, metadata={"help": "Seed of the train/test split by file."})
    transpose: int = field(
        default=0,
        metadata={"help": "Augment with every transposition in [-N, N] semitones (never drums)."},
    )
    num_proc: int | None = field(default=None, metadata={"help": "Worker processes (default: all cores)."})
    max_files: int | None = field(default=None, metadata={"help": "Use at most this many files."})
    infill_prob: float = field(
        default=0.0,
        metadata={"help": "Add a bar-fill (inpainting) variant beside this share of windows (MMM FILL_IN text)."},
    )
    kit_subsets: float = field(
        default=0.0,
        metadata={"help": "Add, beside this share of the training windows with a drum part of 3+ pitches, a copy whose drum "
                          "parts keep a random subset of their kit in every bar (teaches keeping a song's kit)."},
    )
    octave_copies: float = field(
        default=0.0,
        metadata={"help": "Add, beside this share of the training windows with a pitched part, a copy with one such part an "
                          "octave up or down in every bar (teaches keeping a part's register)."},
    )
    like: str | None = field(
        default=None,
        metadata={"help": "Encode with a trained model's codec settings (grid, bars, density levels and edges) so the data "
                          "speaks its language, for `mmmgen train --init-from` the same model: default (the shipped model) "
                          "or a run folder. Overrides --grid, --bars and --density-levels."},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.test_size < 1:
            msg = f"--test-size must be in [0, 1), got {self.test_size}"
            raise ValueError(msg)
        for share in ("infill_prob", "kit_subsets", "octave_copies"):  # shares of the windows
            if not 0 <= getattr(self, share) <= 1:
                msg = f"--{share.replace('_', '-')} must be in [0, 1], got {getattr(self, share)}"
                raise ValueError(msg)
        if not 0 <= self.transpose <= 24:
            msg = f"--transpose must be in [0, 24], got {self.transpose}"
            raise ValueError(msg)
        if self.num_proc is None:
            self.num_proc = os.cpu_count() or 1
        if self.num_proc < 1:
            msg = f"--num-proc must be at least 1, got {self.num_proc}"
            raise ValueError(msg)

    def codec(self) -> CodecConfig:
        """The codec part of these settings."""
        return CodecConfig(self.grid, self.bars, self.hop, self.min_notes, self.density_levels, self.chords, self.chords_share)
