"""The WordLevel tokenizer: whole grammar, no [UNK] on training data, plain-transformers loading."""

from __future__ import annotations

import json

import pytest
from datasets import load_from_disk

from mmmgen.cli import main
from mmmgen.data.prepare import load_report
from mmmgen.model.tokenizer import (
    REPORT_NAME,
    TokenizerError,
    grammar_words,
    load_tokenizer,
    train_tokenizer,
)
from mmmgen.text import vocab as V


def test_autotokenizer_loads_a_fast_tokenizer_with_pad(tiny_tokenizer):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_tokenizer))
    assert tok.is_fast
    assert tok.pad_token == V.PAD
    assert [tok.convert_tokens_to_ids(t) for t in V.SPECIAL_TOKENS] == list(range(len(V.SPECIAL_TOKENS)))


def test_every_training_word_is_one_id_and_never_unk(tiny_dataset, tiny_tokenizer):
    tok = load_tokenizer(tiny_tokenizer)
    texts = load_from_disk(str(tiny_dataset))["train"]["text"]
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert len(ids) == len(text.split())
        assert tok.unk_token_id not in ids
        assert tok.decode(ids) == text


def test_vocabulary_is_the_whole_grammar(tiny_dataset, tiny_tokenizer):
    report = load_report(tiny_dataset)
    tok = load_tokenizer(tiny_tokenizer)
    words = grammar_words(report)
    vocab = tok.get_vocab()
    assert all(w in vocab for w in words)
    assert len(vocab) == len(words) + len(V.SPECIAL_TOKENS)  # nothing else in synthetic data
    # words the data never uses still get ids: a pitch far below the scale, the longest TIME_DELTA,
    # every density level, meter and genre
    for word in (V.note_on(0), V.note_off(127), V.note_hold(5), V.time_delta(48, 12), V.inst(127), V.inst(0, True),
                 V.density(9), V.time_signature(7, 8), V.genre("POP"), V.genre("ROCK"), V.genre(V.OTHER_GENRE)):
        assert tok.convert_tokens_to_ids(word) != tok.unk_token_id, word
    summary = json.loads((tiny_tokenizer / REPORT_NAME).read_text())
    assert summary["vocab_size"] == len(vocab)
    assert summary["extra_words"] == []


def test_training_is_deterministic(tiny_dataset, tiny_tokenizer, tmp_path):
    again = train_tokenizer(tiny_dataset, tmp_path / "again", batch_size=3)  # other batches, same result
    assert again.get_vocab() == load_tokenizer(tiny_tokenizer).get_vocab()


def test_words_outside_the_grammar_are_kept(tiny_dataset, tmp_path):
    """A word the grammar does not know but the data uses (here a velocity) still gets an id."""
    from datasets import load_from_disk

    ds = load_from_disk(str(tiny_dataset))
    ds["train"] = ds["train"].map(lambda r: {"text": r["text"] + " VELOCITY=3"})
    ds.save_to_disk(str(tmp_path / "ds"))
    (tmp_path / "ds" / "report.json").write_text((tiny_dataset / "report.json").read_text())
    tok = train_tokenizer(tmp_path / "ds", tmp_path / "tok")
    assert tok.convert_tokens_to_ids("VELOCITY=3") != tok.unk_token_id


def test_load_tokenizer_errors(tmp_path):
    with pytest.raises(TokenizerError, match="tokenizer not found"):
        load_tokenizer(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "tokenizer.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="cannot load"):
        load_tokenizer(tmp_path / "bad")


def test_cli_tokenizer(tiny_dataset, tmp_path, capsys):
    assert main(["tokenizer", str(tiny_dataset), str(tmp_path / "tok")]) == 0
    assert "saved to" in capsys.readouterr().out
    assert load_tokenizer(tmp_path / "tok").get_vocab() == train_tokenizer(tiny_dataset, tmp_path / "t2").get_vocab()
    assert main(["tokenizer", str(tmp_path / "no-dataset"), str(tmp_path / "x")]) == 2
    assert "not a prepared dataset" in capsys.readouterr().err
