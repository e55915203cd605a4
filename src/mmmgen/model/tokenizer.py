"""MMM text becomes token ids here (and back): ``train_tokenizer`` / ``load_tokenizer``.

``text/encode.py`` turns MIDI into words; this module maps words to ids with a Hugging Face
``tokenizers`` WordLevel model and a ``WhitespaceSplit`` pre-tokenizer, as in the tutorial. The
vocabulary is the dataset's whole grammar (``vocab.all_words`` for its codec settings: every pitch,
duration, instrument, density level, meter and genre) plus any other word of the training split,
so a model can write a pitch the training set never used, and no training word becomes ``[UNK]``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

from mmmgen.errors import MMMGenError
from mmmgen.text import vocab as V

log = logging.getLogger(__name__)

REPORT_NAME = "tokenizer_report.json"


class TokenizerError(MMMGenError):
    """A tokenizer folder that is missing, unreadable or does not fit the dataset."""


def grammar_words(report: dict) -> list[str]:
    """Every word of the grammar for a prepared dataset's settings (its ``report.json``)."""
    codec = report.get("codec", {})
    return V.all_words(
        grid=codec.get("grid", 12),
        density_levels=codec.get("density_levels", 10),
        genres=report.get("genre_labels", ()),
        velocity_levels=codec.get("velocity_levels", 0),
        chords=bool(codec.get("chords", False)),
    )


def _text_batches(dataset, batch_size: int) -> Iterator[list[str]]:
    for batch in dataset.iter(batch_size=batch_size):
        yield batch["text"]


def train_tokenizer(dataset_dir: str | Path, out_dir: str | Path, batch_size: int = 1000):
    """Train a WordLevel tokenizer on a prepared dataset's train split and save it.

    The train split is streamed in batches of ``batch_size`` windows; the grammar words are fed
    once more so that words the data never uses still get an id.

    Args:
        dataset_dir: Folder written by ``mmmgen prepare`` (``data/prepare.py``).
        out_dir: Output folder; ``AutoTokenizer.from_pretrained(out_dir)`` loads it.
        batch_size: Windows per streamed batch.

    Returns:
        The ``PreTrainedTokenizerFast`` that was saved.
    """
    from datasets import load_from_disk
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from mmmgen.data.prepare import load_report

    report = load_report(dataset_dir)
    train = load_from_disk(str(dataset_dir))["train"]
    grammar = grammar_words(report)

    tok = Tokenizer(models.WordLevel(unk_token=V.UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordLevelTrainer(
        vocab_size=10_000_000,  # never drop a word: the grammar is a few hundred, junk is counted below
        min_frequency=0,
        special_tokens=list(V.SPECIAL_TOKENS),
        show_progress=False,
    )

    def batches() -> Iterator[list[str]]:
        yield grammar  # each grammar word once, so unseen words are kept (ties sort by name)
        yield from _text_batches(train, batch_size)

    tok.train_from_iterator(batches(), trainer=trainer, length=len(train) // batch_size + 2)
    fast = wrap_tokenizer(tok)
    extra = sorted(set(fast.get_vocab()) - set(grammar) - set(V.SPECIAL_TOKENS))
    if extra:
        log.warning("%d words of the data are not in the grammar, e.g. %s", len(extra), extra[:5])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out_dir))
    summary = {
        "dataset": str(Path(dataset_dir).resolve()),
        "vocab_size": len(fast),
        "grammar_words": len(grammar),
        "extra_words": extra,
        "train_windows": len(train),
        "codec": report.get("codec", {}),
        "genre_labels": report.get("genre_labels", []),
    }
    (out_dir / REPORT_NAME).write_text(json.dumps(summary, indent=2))
    return fast


def wrap_tokenizer(tok):
    """A ``tokenizers.Tokenizer`` as a transformers fast tokenizer with the special tokens named."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token=V.UNK,
        cls_token=V.CLS,
        sep_token=V.SEP,
        pad_token=V.PAD,
        mask_token=V.MASK,
        model_max_length=1_000_000,  # the model's context length limits windows, not the tokenizer
    )


def load_tokenizer(path: str | Path):
    """``AutoTokenizer.from_pretrained(path)`` with one-line errors for folders that do not fit.

    Raises:
        TokenizerError: missing folder, not a fast WordLevel tokenizer, or no ``[PAD]`` token.
    """
    from transformers import AutoTokenizer

    path = Path(path)
    if not (path / "tokenizer.json").is_file():
        msg = f"tokenizer not found: {path} (no tokenizer.json; build one with `mmmgen tokenizer DATASET OUT`)"
        raise TokenizerError(msg)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
    except Exception as exc:  # a corrupt json or config: say which folder
        msg = f"cannot load the tokenizer in {path}: {exc}"
        raise TokenizerError(msg) from exc
    if not tokenizer.is_fast or tokenizer.pad_token != V.PAD:
        msg = f"{path} is not an mmmgen tokenizer (needs a fast tokenizer with pad token {V.PAD})"
        raise TokenizerError(msg)
    return tokenizer


def missing_words(tokenizer, words: list[str] | tuple[str, ...]) -> list[str]:
    """The words that the tokenizer has no id for (they would become ``[UNK]``)."""
    known = tokenizer.get_vocab()
    return [w for w in words if w not in known]


def format_summary(tokenizer, out_dir: str | Path) -> str:
    """One line for people: vocabulary size and where the tokenizer went."""
    return f"tokenizer with {len(tokenizer)} words ({len(V.SPECIAL_TOKENS)} special) saved to {out_dir}"
