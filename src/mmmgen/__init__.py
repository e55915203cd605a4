"""mmmgen: a folder of MIDI files in, a GPT-2 music model and a multitrack music generator out.

The package is laid out as the pipeline runs (imports point one way, down this list):

* ``cli``, ``app``: the ``mmmgen`` command and the Gradio app, thin layers over the library;
* ``model/``: the tokenizer, run folders (build / load / ship), training, sweeps, evaluation;
* ``generate/``: grammar masks, the decoding engine, songs and their operations;
* ``data/``: MIDI collections -> datasets (corpus export, genre labels, ``prepare``);
* ``render/``: MIDI files, audio, piano rolls, General MIDI names;
* ``text/``: the MMM language (vocabulary, MIDI -> text, text -> MIDI, bar-fill text);
* ``config``, ``errors``: typed settings and the error classes every layer raises.

The public API below is importable from ``mmmgen`` itself. Each name is loaded on first use, so
``import mmmgen`` stays light (no torch, transformers or symusic until you need them)::

    from mmmgen import Sampling, generate_song, generator_from_run, text_to_score
"""

from __future__ import annotations

import importlib

__all__ = [
    "Cancelled",
    "ControlError",
    "Controls",
    "Follow",
    "Generator",
    "MMMGenError",
    "Sampling",
    "Song",
    "Take",
    "estimate_key",
    "find_run",
    "generate_song",
    "generator_from_run",
    "harmonize",
    "load_run",
    "prompt_song",
    "rank_takes",
    "read_chords",
    "score_to_texts",
    "song_to_score",
    "stop_when",
    "text_to_piece",
    "text_to_score",
]

_WHERE = {  # public name -> the module that defines it (read-only)
    "Cancelled": "mmmgen.generate.sampling",
    "ControlError": "mmmgen.generate.controls",
    "Controls": "mmmgen.generate.controls",
    "estimate_key": "mmmgen.generate.controls",
    "Follow": "mmmgen.generate.follow",
    "Generator": "mmmgen.generate.song",
    "MMMGenError": "mmmgen.errors",
    "Sampling": "mmmgen.generate.sampling",
    "Song": "mmmgen.generate.song",
    "Take": "mmmgen.generate.song",
    "find_run": "mmmgen.model.run",
    "generate_song": "mmmgen.generate.song",
    "generator_from_run": "mmmgen.model.run",
    "harmonize": "mmmgen.generate.harmonize",
    "load_run": "mmmgen.model.run",
    "prompt_song": "mmmgen.generate.prompt",
    "rank_takes": "mmmgen.generate.song",
    "read_chords": "mmmgen.text.harmony",
    "score_to_texts": "mmmgen.text.encode",
    "song_to_score": "mmmgen.generate.prompt",
    "stop_when": "mmmgen.generate.sampling",
    "text_to_piece": "mmmgen.text.decode",
    "text_to_score": "mmmgen.text.decode",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    msg = f"module 'mmmgen' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
