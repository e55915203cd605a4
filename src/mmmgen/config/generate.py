"""Settings of ``mmmgen generate``/``infill``/``extend``/``app``/``space``: pieces, takes, controls, the app."""

from __future__ import annotations

from dataclasses import dataclass, field


# --- generation (mmmgen generate / mmmgen infill / mmmgen app) --------------------------------
@dataclass
class PieceConfig:
    """What ``generate`` and ``infill`` share: the model, sampling and the files written."""

    model: str | None = field(default=None, metadata={"help": "Run folder of a trained model; default: the model shipped with mmmgen (also when unset); latest: the newest under runs/."})
    out: str = field(default="out", metadata={"help": "Output folder (piece.mid, piece.wav, piece.png, piece.txt)."})
    temperature: float = field(default=0.85, metadata={"help": "Sampling temperature."})
    top_k: int = field(default=0, metadata={"help": "Keep only the k most likely words (0: off)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling threshold (1: off)."})
    seed: int | None = field(default=None, metadata={"help": "Seed for reproducible output (default: fresh randomness)."})
    tempo: float | None = field(
        default=None,
        metadata={"help": "Tempo in BPM, one for the whole piece (a rendering setting); default: the input's own (a MIDI "
                          "file's tempo map, text's BPM=), else 120."},
    )
    format: str = field(default="mid,wav,png,txt", metadata={"help": "Outputs: any of mid,wav,png,txt (mp3/ogg need ffmpeg)."})


@dataclass
class GenerateConfig(PieceConfig):
    """``mmmgen generate``: a piece, one track at a time, written as MIDI/audio/picture/text."""

    genre: str | None = field(default=None, metadata={"help": "Genre word (e.g. BACH); default: a genre the model knows, at random."})
    tracks: int = field(default=4, metadata={"help": "New tracks to generate."})
    instrument: list[str] = field(
        default_factory=list,
        metadata={"help": "Instrument of each new track in order: GM program number, GM name or DRUMS (the rest: model's choice).", "nargs": "+"},
    )
    density: int | None = field(default=None, metadata={"help": "DENSITY level of every new track (default: model's choice)."})
    bars: int | None = field(default=None, metadata={"help": "Bars per track (default: as trained; longer: the first window, then extended; at most 256)."})
    time_signature: str = field(default="4_4", metadata={"help": "Meter, e.g. 4_4, 3_4, 6_8."})
    prompt: str | None = field(default=None, metadata={"help": "Start from a MIDI file (all its bars, up to 256) or MMM text; new tracks are added to it."})

    def __post_init__(self) -> None:
        if self.tracks < 0 or (self.tracks == 0 and not self.prompt):
            msg = f"--tracks must be at least 1 (or 0 with --prompt), got {self.tracks}"
            raise ValueError(msg)
        if self.bars is not None and self.bars < 1:
            msg = f"--bars must be at least 1, got {self.bars}"
            raise ValueError(msg)


@dataclass
class AppConfig:
    """``mmmgen app``: the web app on a trained model."""

    model: str | None = field(default=None, metadata={"help": "Run folder of a trained model; default: the model shipped with mmmgen (also when unset); latest: the newest under runs/."})
    host: str = field(default="127.0.0.1", metadata={"help": "Address to bind (127.0.0.1: this machine only)."})
    port: int = field(default=7860, metadata={"help": "Port."})
    concurrency: int = field(default=1, metadata={"help": "Generations at once (1 is fastest overall on a CPU)."})
    queue_size: int = field(default=16, metadata={"help": "Requests that may wait; more are turned away with a message."})
    cache_minutes: float = field(default=10.0, metadata={"help": "Served files (audio, MIDI, pictures) older than this are deleted."})
    load: str | None = field(
        default=None,
        metadata={"help": "A piece every new page starts with: MMM text (e.g. a piece.txt from generate) or a MIDI file "
                          "(its tempo, track names and drum kit kept); default: an empty page."},
    )


@dataclass
class InfillConfig(PieceConfig):
    """``mmmgen infill``: regenerate chosen bars of one track of a piece (MMM bar-fill)."""

    input: str = field(default="", metadata={"help": "The piece: MMM text (first line; e.g. a piece.txt from generate) or a MIDI file "
                                                     "(or give it as the first argument, as for extend)."})
    track: int = field(default=1, metadata={"help": "Track to rewrite, 1-based in text order."})
    bars: str = field(default="all", metadata={"help": "Bars to rewrite: A-B (1-based, inclusive), A, or all."})

    def __post_init__(self) -> None:  # the input may come as an argument instead (cli.cmd_infill checks it is there)
        if self.track < 1:
            msg = f"--track is 1-based, got {self.track}"
            raise ValueError(msg)
        self.bar_range()  # fail early on a bad --bars

    def bar_range(self) -> list[int] | None:
        """0-based bar indexes, or None for all."""
        text = self.bars.strip().lower()
        if text == "all":
            return None
        first, _, last = text.partition("-")
        try:
            a, b = int(first), int(last or first)
        except ValueError:
            msg = f"--bars must be A-B, A or all, got {self.bars!r}"
            raise ValueError(msg) from None
        if not 1 <= a <= b:
            msg = f"--bars must be 1-based with A <= B, got {self.bars!r}"
            raise ValueError(msg)
        return list(range(a - 1, b))


@dataclass
class ExtendConfig(PieceConfig):
    """``mmmgen extend``: N more bars on every track of a piece (MMM text or MIDI); its bars stay as they are."""

    bars: int | None = field(default=None, metadata={"help": "New bars on every track (default: one trained window, e.g. 8)."})

    def __post_init__(self) -> None:
        if self.bars is not None and self.bars < 1:
            msg = f"--bars must be at least 1, got {self.bars}"
            raise ValueError(msg)


@dataclass
class TakesConfig:
    """Several takes at once (``mmmgen generate`` / ``mmmgen infill``; ``mmmgen extend``)."""

    takes: int | None = field(
        default=None,
        metadata={"help": "Write N takes, decoded as one batch: DIR/take-1/piece.* .. DIR/take-N/piece.* and DIR/takes.csv "
                  "(take, seed, log_likelihood_per_note); take k uses --seed + k - 1 (default: one piece in DIR, as without takes)."},
    )
    rank: bool = field(default=False, metadata={"help": "With --takes: number the take folders best first, by the model's log-likelihood per note."})

    def __post_init__(self) -> None:
        if self.takes is not None and not 1 <= self.takes <= 64:
            msg = f"--takes must be in 1..64, got {self.takes}"
            raise ValueError(msg)
        if self.rank and self.takes is None:
            msg = "--rank needs --takes N"
            raise ValueError(msg)


# --- sharing a model (mmmgen space) --------------------------------------------------------------
SPACE_COLORS = ("red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray")  # what Spaces accept


@dataclass
class SpaceConfig:
    """``mmmgen space RUN OUT``: a folder that runs as a Hugging Face Space (or a Docker image)."""

    title: str = field(default="MMM music generator", metadata={"help": "The Space's title (README front matter)."})
    emoji: str = field(default="🎹", metadata={"help": "The Space's emoji."})
    color_from: str = field(default="indigo", metadata={"help": "First colour of the Space's card.", "choices": list(SPACE_COLORS)})
    color_to: str = field(default="purple", metadata={"help": "Second colour of the Space's card.", "choices": list(SPACE_COLORS)})
    license: str = field(default="mit", metadata={"help": "Licence id of the Space (e.g. mit, apache-2.0, cc-by-4.0); mind the training data's."})
    short_description: str = field(
        default="Multitrack music, one instrument at a time", metadata={"help": "One line under the title (at most 60 characters)."}
    )
    max_mb: float = field(default=1000.0, metadata={"help": "Refuse a model larger than this many megabytes."})

    def __post_init__(self) -> None:
        if self.color_from not in SPACE_COLORS or self.color_to not in SPACE_COLORS:
            msg = f"--color-from and --color-to must be one of {', '.join(SPACE_COLORS)}, got {self.color_from!r}, {self.color_to!r}"
            raise ValueError(msg)
        if not self.title.strip() or len(self.short_description) > 60:
            msg = f"--title must not be empty and --short-description at most 60 characters, got {len(self.short_description)}"
            raise ValueError(msg)
        if self.max_mb <= 0:
            msg = f"--max-mb must be positive, got {self.max_mb}"
            raise ValueError(msg)


# --- musical controls (mmmgen generate / mmmgen infill) -----------------------------------------
@dataclass
class ControlsConfig:
    """Musical controls every new track (or bar) obeys; drum tracks are exempt."""

    scale: str | None = field(default=None, metadata={"help": "Scale lock TONIC:MODE, e.g. C:major, A:minor, D:dorian, E:minor-pentatonic (modes: major, minor, the church modes, major-/minor-pentatonic)."})
    pitch_range: str | None = field(default=None, metadata={"help": "Lowest-highest MIDI pitch of new notes, e.g. 48-72."})
    max_polyphony: int | None = field(default=None, metadata={"help": "Most notes sounding at once in a track."})
    min_note: float | None = field(default=None, metadata={"help": "Shortest note in quarter notes (0.25: a sixteenth)."})
    max_note: float | None = field(default=None, metadata={"help": "Longest note in quarter notes (4: a whole note in 4/4)."})


# --- chords (mmmgen generate / extend / infill / harmonize) ---------------------------------------
CHORD_RULES = ("strict", "loose", "off")


@dataclass
class ChordsConfig:
    """The chord progression new notes follow, and how strictly (drum tracks are exempt)."""

    chords: str | None = field(
        default=None,
        metadata={"help": "Chord progression: 'Am F C G' (a chord per bar; Am, F#m7, Cmaj7, G7, Bb, Edim, Fsus4, C/E, A:min), "
                          "'Am:2 F:2' (beats), 'Am F | C G' (bars); or a chord CSV (mmmgen chords --out), MIDI, MusicXML or MMM text "
                          "file to take the chords from. A progression shorter than the piece repeats."},
    )
    chord_rule: str | None = field(
        default=None,
        metadata={"help": "strict: chord tones only; loose: chord tones on beats and for notes a beat or longer, scale tones "
                          "(--scale, else the progression's key) between; off: no rule. Bass lines land on the chord's bass. "
                          "Default: loose over --chords or the piece's own chords, else off (extend/infill of a piece without "
                          "chords follow the chords read from its notes only when a rule is given).",
                  "choices": list(CHORD_RULES)},
    )

    def __post_init__(self) -> None:
        if self.chord_rule is not None and self.chord_rule not in CHORD_RULES:
            msg = f"--chord-rule must be one of {', '.join(CHORD_RULES)}, got {self.chord_rule!r}"
            raise ValueError(msg)


@dataclass
class HarmonizeConfig(PieceConfig):
    """``mmmgen harmonize MELODY``: accompaniment tracks that follow the melody's chords."""

    tracks: int = field(default=3, metadata={"help": "Accompaniment tracks to add."})
    instrument: list[str] = field(
        default_factory=list,
        metadata={"help": "Instrument of each new track in order: GM program number, GM name or DRUMS (the rest: model's choice).", "nargs": "+"},
    )

    def __post_init__(self) -> None:
        if self.tracks < 1:
            msg = f"--tracks must be at least 1, got {self.tracks}"
            raise ValueError(msg)


# --- following the song (mmmgen extend / infill / generate --prompt) ------------------------------
@dataclass
class FollowConfig:
    """How new music written into a song follows it (``generate/follow.py``): on unless ``--free``."""

    free: bool = field(default=False, metadata={"help": "Do not follow the song: no song-derived rules (each track's register, drum kit, notes per bar; the key's tonal centre)."})
    register_margin: int = field(default=2, metadata={"help": "Semitones a pitched track's new notes may go beyond its own range in the song (-1: any pitch)."})
    whole_kit: bool = field(default=False, metadata={"help": "A drum track's new hits may use any drum, not only those it already uses."})

    def __post_init__(self) -> None:
        if not -1 <= self.register_margin <= 127:
            msg = f"--register-margin must be -1 (off) or 0..127 semitones, got {self.register_margin}"
            raise ValueError(msg)
