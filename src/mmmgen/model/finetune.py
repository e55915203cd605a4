"""Fine-tuning: ``mmmgen train --init-from MODEL`` continues from a trained model on a new dataset.

``MODEL`` is ``default`` (the model shipped with mmmgen) or any run folder. The dataset must
speak the model's language: prepared with ``mmmgen prepare DIR OUT --like MODEL`` (the model's
grid, bars, density levels and density edges); anything else raises ``CodecMismatchError``
instead of training on words that mean something else to the model.

The model's own tokenizer is used. Words of the dataset it does not know (a new ``GENRE=``, a
meter it never saw) are appended to its WordLevel vocabulary and the model's embedding rows
(tied to the output rows in GPT-2) grow with them: a new row starts at the mean of the
existing words of its kind (the mean of every ``GENRE=`` row for a new genre), else at the mean
of all rows. Nothing becomes ``[UNK]``; the added words are logged and kept in ``mmmgen.json``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from mmmgen.config import TrainConfig
from mmmgen.errors import MMMGenError
from mmmgen.text import vocab as V

log = logging.getLogger(__name__)

SHAPE_KEYS = {"n_layer": "n_layer", "n_head": "n_head", "n_embd": "n_embd", "context_length": "n_positions"}


class CodecMismatchError(MMMGenError):
    """A dataset encoded with other codec settings than the model it should fine-tune."""


@dataclass
class Base:
    """The model a fine-tuning run starts from, with its (extended) tokenizer."""

    name: str
    path: Path
    settings: dict
    tokenizer: object = None
    added: list[str] = field(default_factory=list)
    vocab_before: int = 0

    def info(self) -> dict:
        """What ``mmmgen.json`` records under ``base_model``."""
        return {"name": self.name, "path": str(self.path.resolve()), "vocab_size_before": self.vocab_before,
                "vocab_size": self.vocab_before + len(self.added), "added_words": self.added}


def codec_differences(report: dict, settings: dict) -> list[str]:
    """How a prepared dataset's codec (``report.json``) differs from a model's (``mmmgen.json``)."""
    ours, theirs = report.get("codec", {}), settings.get("codec", {})
    diffs = [f"{k} {ours.get(k)} (model: {theirs.get(k)})" for k in ("grid", "bars", "density_levels")
             if k in theirs and ours.get(k) != theirs[k]]
    a, b = report.get("density_edges", []), settings.get("density_edges", [])
    if len(a) != len(b) or any(abs(x - y) > 1e-6 for x, y in zip(a, b, strict=False)):
        diffs.append(f"density edges {[round(x, 1) for x in a]} (model: {[round(x, 1) for x in b]})")
    return diffs


def check_codec(report: dict, settings: dict, dataset: str, name: str) -> None:
    """Raise ``CodecMismatchError`` unless the dataset was encoded as the model ``name`` encodes."""
    diffs = codec_differences(report, settings)
    if diffs:
        msg = (f"{dataset} was not prepared like the model {name}: {'; '.join(diffs)}. "
               f"Prepare it again with `mmmgen prepare MIDI_DIR OUT --like {name}`")
        raise CodecMismatchError(msg)


def dataset_words(dataset_dir: str | Path) -> set[str]:
    """Every word of every split of a prepared dataset."""
    from datasets import load_from_disk

    words: set[str] = set()
    for split in load_from_disk(str(dataset_dir)).values():
        for batch in split.iter(batch_size=1000):
            for text in batch["text"]:
                words.update(text.split())
    return words


def extend_tokenizer(tokenizer, words) -> tuple[object, list[str]]:
    """``tokenizer`` with ``words`` it lacks appended to its WordLevel vocabulary (new ids after the old).

    Returns ``(tokenizer, added words)``; the tokenizer is the same object when nothing was added.
    """
    from tokenizers import Tokenizer

    from mmmgen.model.tokenizer import wrap_tokenizer

    known = tokenizer.get_vocab()
    added = sorted(w for w in set(words) if w not in known)
    if not added:
        return tokenizer, []
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    start = max(vocab.values()) + 1
    vocab.update({w: start + i for i, w in enumerate(added)})
    return wrap_tokenizer(Tokenizer.from_str(json.dumps(spec))), added


def _kind(word: str) -> str:
    return V.parse_word(word).kind


def grow_embeddings(model, tokenizer, added: list[str]) -> None:
    """Give ``model`` a row for each of ``added`` (ids as in ``tokenizer``): the mean of the old rows
    of the same kind of word (e.g. every ``GENRE=``), else the mean of all old rows. Tied output rows
    follow; an untied output layer gets the same rule."""
    import torch

    old = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(max(len(tokenizer), old), mean_resizing=False)
    vocab = tokenizer.get_vocab()
    by_kind: dict[str, list[int]] = {}
    for w, i in vocab.items():
        if i < old and w not in V.SPECIAL_TOKENS:
            by_kind.setdefault(_kind(w), []).append(i)
    matrices = [model.get_input_embeddings().weight]
    out = model.get_output_embeddings()
    if out is not None and out.weight.data_ptr() != matrices[0].data_ptr():
        matrices.append(out.weight)
    with torch.no_grad():
        for weight in matrices:
            everything = weight[:old].mean(0)
            for w in added:
                same = by_kind.get(_kind(w))
                weight[vocab[w]] = weight[same].mean(0) if same else everything


def load_base(cfg: TrainConfig, report: dict) -> Base:
    """Check the dataset against ``cfg.init_from`` and fill the model shape of ``cfg`` from it.

    Returns the ``Base`` with its tokenizer extended by the dataset's new words (the model is
    loaded later by ``base_model``, after the seed is set).

    Raises:
        CodecMismatchError: the dataset was not prepared ``--like`` the model.
        TrainError: a shape flag that contradicts the model's.
    """
    from mmmgen.data.prepare import model_settings
    from mmmgen.model.batching import TrainError
    from mmmgen.model.tokenizer import load_tokenizer

    path, settings = model_settings(cfg.init_from)
    check_codec(report, settings, cfg.dataset, cfg.init_from)
    config = json.loads((path / "config.json").read_text())
    clash = [f"--{k.replace('_', '-')} {getattr(cfg, k)} (model: {config[key]})" for k, key in SHAPE_KEYS.items()
             if getattr(cfg, k) is not None and getattr(cfg, k) != config[key]]
    if clash:
        msg = f"--init-from {cfg.init_from} fixes the model shape; drop {', '.join(clash)}"
        raise TrainError(msg)
    for k, key in SHAPE_KEYS.items():
        setattr(cfg, k, config[key])
    tokenizer = load_tokenizer(path)
    before = len(tokenizer)
    tokenizer, added = extend_tokenizer(tokenizer, dataset_words(cfg.dataset))
    if added:
        log.info("--init-from %s: %d words new to the model added to its vocabulary (%d -> %d): %s", cfg.init_from,
                 len(added), before, len(tokenizer), ", ".join(added[:20]) + (" ..." if len(added) > 20 else ""))
    else:
        log.info("--init-from %s: the model knows every word of the dataset", cfg.init_from)
    return Base(cfg.init_from, path, settings, tokenizer, added, before)


def base_model(base: Base, dropout: float | None = None, attention_dropout: float | None = None):
    """The base model's weights, its embedding grown for the added words (``grow_embeddings``).

    ``dropout`` / ``attention_dropout`` (``--dropout``, ``--attention-dropout``) replace the base
    model's when given; unset, the fine-tune keeps the base model's own."""
    from transformers import GPT2LMHeadModel

    drops = {"resid_pdrop": dropout, "embd_pdrop": dropout, "attn_pdrop": attention_dropout}
    model = GPT2LMHeadModel.from_pretrained(str(base.path), **{k: v for k, v in drops.items() if v is not None})
    model.loss_type = "ForCausalLM"
    if base.added:
        grow_embeddings(model, base.tokenizer, base.added)
    model.train()
    return model


def base_settings(settings: dict, base: Base) -> dict:
    """A run's ``mmmgen.json`` settings naming its base model; genres: the base's and the dataset's."""
    genres = sorted(set(base.settings.get("genre_labels", [])) | set(settings.get("genre_labels", [])))
    return {**settings, "genre_labels": genres, "base_model": base.info()}
