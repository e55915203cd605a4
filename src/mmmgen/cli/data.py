"""Sub-commands of the data side: corpus, genres, prepare, tokenizer, chords, render."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mmmgen.cli.common import parse_config


def cmd_corpus(argv: Sequence[str]) -> int:
    from mmmgen.data import corpus

    def extra(p):
        p.add_argument("--collections", default=None, help=f"Comma-separated subset of {','.join(corpus.COLLECTIONS)} (all: these, the default) "
                       "and of the open collections groove, lmd-beatles, openewld (open: these three) and nottingham (GPL-3.0: not for shipped weights).")
        p.add_argument("--from", dest="from_dir", default=None, help="Folder with local copies of the open collections (groove/, lmd-beatles/, ...); "
                       "without it they are downloaded (pinned commit, checked against a SHA-256).")
        p.add_argument("--cache", default=None, help="Download folder of the open collections (default: OUT_DIR/.downloads).")
        p.add_argument("--allow-unpinned", action="store_true", help="Accept a download of a collection that has no pinned checksum (nottingham).")
        p.add_argument("--num-proc", type=int, default=None, help="Worker processes (default: all cores).")
        p.add_argument("--limit", type=int, default=None, help="At most this many works per collection, the first ones (smoke runs).")
        p.add_argument("--sample", type=int, default=None,
                       help="At most this many works per collection, evenly spread over it (a smaller corpus that still covers every source).")

    _, ns = parse_config(
        argv, [], "mmmgen corpus", "Export music21's public-domain corpus and open collections to MIDI + genres.csv (the default model's data).",
        [("out_dir", "Output folder (one sub-folder per collection, plus genres.csv).")], extra,
    )
    names = ns["collections"].split(",") if ns["collections"] else None
    report = corpus.export_corpus(ns["out_dir"], names, num_proc=ns["num_proc"], limit=ns["limit"], sample=ns["sample"],
                                  from_dir=ns["from_dir"], cache=ns["cache"], allow_unpinned=ns["allow_unpinned"])
    print(report.summary() if hasattr(report, "summary") else report)
    return 0


def cmd_genres(argv: Sequence[str]) -> int:
    from mmmgen.data import genres, spotify

    def extra(p):
        p.add_argument("--out", required=True, help="Output CSV path,genre (paths relative to MIDI_DIR) for `mmmgen prepare --genres`.")
        p.add_argument("--artist-csv", default=None, help="Artist -> genre CSV: the tutorial's Artist,Genre_ChatGPT,Formatted_Artist or plain artist,genre.")
        p.add_argument("--from-folders", choices=genres.FOLDER_MODES, default=None, help="The parent folder names the artist (looked up; the default with --artist-csv/--spotify) or the genre itself.")
        p.add_argument("--spotify", action="store_true", help="Look artists missing from --artist-csv up on Spotify (top hit's genres); needs SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET.")
        p.add_argument("--group", default=None, help="Genre map YAML (fine -> coarse genres); 'default' = the built-in map (the default with --spotify), 'none' keeps fine genres.")
        p.add_argument("--min-count", type=int, default=0, help="Merge genres with fewer files into OTHER.")
        p.add_argument("--cache", default=None, help="JSON cache of Spotify answers (default: next to --out); a rerun asks only for what is missing.")

    _, ns = parse_config(
        argv, [], "mmmgen genres", "Label a MIDI collection (Lakh MIDI Clean Artist/Title.mid) with genres; print a balance report.",
        [("midi_dir", "Folder of MIDI files (Artist/Title.mid, or Genre/... with --from-folders genre).")], extra,
    )
    client = spotify.SpotifyClient.from_env() if ns["spotify"] else None
    report = genres.label_collection(
        ns["midi_dir"], ns["out"], artist_csv=ns["artist_csv"], from_folders=ns["from_folders"], spotify=client,
        group=ns["group"], min_count=ns["min_count"], cache=ns["cache"],
    )
    print(report.summary())
    return 0


def cmd_prepare(argv: Sequence[str]) -> int:
    from mmmgen.config import PrepareConfig
    from mmmgen.data.prepare import format_report, prepare

    (config,), ns = parse_config(
        argv, [PrepareConfig], "mmmgen prepare",
        "Cut every MIDI file of a folder into N-bar windows of MMM text; save a Hugging Face dataset + report.json.",
        [("midi_dir", "Folder of MIDI files (searched recursively)."), ("out_dir", "Output dataset folder.")],
    )
    report = prepare(ns["midi_dir"], ns["out_dir"], config)
    print(format_report(report))
    print(f"dataset written to {ns['out_dir']}")
    return 0


def cmd_tokenizer(argv: Sequence[str]) -> int:
    from mmmgen.config import TokenizerConfig
    from mmmgen.model.tokenizer import format_summary, train_tokenizer

    (config,), ns = parse_config(
        argv, [TokenizerConfig], "mmmgen tokenizer",
        "Train a WordLevel tokenizer (whitespace words) on a dataset's train split; its vocabulary is the dataset's whole grammar.",
        [("dataset_dir", "Prepared dataset folder (mmmgen prepare)."), ("out_dir", "Output tokenizer folder.")],
    )
    tokenizer = train_tokenizer(ns["dataset_dir"], ns["out_dir"], batch_size=config.batch_size)
    print(format_summary(tokenizer, ns["out_dir"]))
    return 0


def cmd_chords(argv: Sequence[str]) -> int:
    from mmmgen.data.chordfiles import chords_report

    def extra(p):
        p.add_argument("--out", default=None, help="Write the chords as CSV (start_beat,end_beat,start_s,end_s,chord) here.")
        p.add_argument("--resolution", choices=("auto", "bar", "half", "beat"), default="auto", help="Finest chord segment (auto: what the harmony changes on).")
        p.add_argument("--symbols", action="store_true", help="Print the file's own chord symbols (MusicXML <harmony>, ABC \"Am\") instead of reading the notes.")

    _, ns = parse_config(argv, [], "mmmgen chords", "Read the chords of a MIDI file, a score (MusicXML, ABC) or MMM text: a line per bar, and a CSV.",
                         [("file", "MIDI, MusicXML/ABC (read by music21) or MMM text (its first piece).")], extra)
    text, table = chords_report(ns["file"], symbols=ns["symbols"], resolution=ns["resolution"])
    print(text)
    if ns["out"]:
        Path(ns["out"]).write_text(table, encoding="utf-8")
        print(f"chords written to {ns['out']}")
    return 0


def cmd_render(argv: Sequence[str]) -> int:
    from mmmgen.render.files import FORMATS, SOUNDFONT_ENV, SYNTHS, render_file

    def extra(p):
        p.add_argument("--out", required=True, help="Output folder: <stem>.<fmt> for a MIDI file or a text of one piece (piece.txt -> piece.mid, ...); 0000.<fmt>, 0001.<fmt>, ... for a text of several, one per line.")
        p.add_argument("--format", default="mid", help=f"Comma-separated output formats, e.g. mid,wav,png (from {','.join(FORMATS)}; mp3/ogg need ffmpeg).")
        p.add_argument("--tempo", type=float, default=None, help="Tempo in BPM; unset, text plays at its BPM= or 120 and a MIDI file at its own tempo.")
        p.add_argument("--grid", type=int, default=12, help="Grid steps per quarter of the text.")
        p.add_argument("--soundfont", default=None, help=f"General MIDI .sf2 for audio; unset: ${SOUNDFONT_ENV}, else fluid-soundfont-gm's FluidR3_GM.sf2, else pretty_midi's TimGM6mb.sf2.")
        p.add_argument("--synth", choices=SYNTHS, default="auto", help="Audio synthesizer; auto: FluidSynth when installed, else the built-in numpy SoundFont player.")
        p.add_argument("--sample-rate", type=int, default=44100, help="Audio sample rate in Hz.")

    _, ns = parse_config(
        argv, [], "mmmgen render", "Render MMM text (one piece per line) or a MIDI file to MIDI, audio (wav/mp3/ogg) and piano-roll pictures (png).",
        [("input", "Text file with one MMM piece per line (the tutorial's token_sequences_*.txt work), or a MIDI file.")], extra,
    )
    written = render_file(
        ns["input"], ns["out"], ns["format"], tempo=ns["tempo"], grid=ns["grid"],
        soundfont=ns["soundfont"], synth=ns["synth"], sample_rate=ns["sample_rate"],
    )
    kinds = sorted({p.suffix.lstrip(".") for p in written})
    print(f"wrote {len(written)} files ({', '.join(kinds) or 'none'}) to {ns['out']}")
    return 0
