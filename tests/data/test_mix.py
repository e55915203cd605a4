"""The data's mix: windows per collection per epoch (``train --mix``)."""

from __future__ import annotations

from collections import Counter

import pytest

from mmmgen.data.mix import MixError, collection_of, format_mix, mix_indices, parse_mix

SOURCES = [f"BACH/c{i}.mid" for i in range(100)] + [f"GROOVE/d/{i}.mid" for i in range(10)] + [f"NOTTINGHAM/m/{i}.mid" for i in range(20)]
GENRES = ["BACH"] * 100 + ["DRUMS"] * 10 + ["FOLK"] * 20


def counts(indices):
    return Counter(collection_of(SOURCES[i]) for i in indices)


def test_parse_mix():
    assert parse_mix("bach=0.2, Groove=300 ,") == {"BACH": 0.2, "GROOVE": 300.0}
    for bad in ("BACH", "BACH=x", "=0.2", "BACH=-1", ""):
        with pytest.raises(MixError):
            parse_mix(bad)


def test_shares_counts_and_exclusion():
    indices, report = mix_indices(SOURCES, GENRES, parse_mix("BACH=0.25,GROOVE=35,NOTTINGHAM=0"), seed=1)
    assert counts(indices) == {"BACH": round(0.25 * 130), "GROOVE": 35}
    assert report["GROOVE"] == {"windows": 10, "selected": 35}
    groove = Counter(i for i in indices if SOURCES[i].startswith("GROOVE"))
    assert sorted(set(groove.values())) == [3, 4] and len(groove) == 10  # 3 whole copies + 5 more
    bach = [i for i in indices if SOURCES[i].startswith("BACH")]
    assert len(set(bach)) == len(bach)  # fewer than it has: a sample without repeats
    assert indices != sorted(indices)  # shuffled
    assert "GROOVE 10 -> 35" in format_mix(report)


def test_unnamed_collections_keep_their_windows_and_genres_name_collections():
    indices, _ = mix_indices(SOURCES, GENRES, {"DRUMS": 20.0}, seed=0)
    assert counts(indices) == {"BACH": 100, "GROOVE": 20, "NOTTINGHAM": 20}
    again, _ = mix_indices(SOURCES, GENRES, {"DRUMS": 20.0}, seed=0)
    other, _ = mix_indices(SOURCES, GENRES, {"DRUMS": 20.0}, seed=5)
    assert again == indices and other != indices  # seeded


def test_unknown_name_is_a_named_error():
    with pytest.raises(MixError, match="POP is not a collection"):
        mix_indices(SOURCES, GENRES, {"POP": 0.5})
    indices, _ = mix_indices(SOURCES, GENRES, {"POP": 0.0})  # leaving out what is not there: fine
    assert sorted(indices) == list(range(len(SOURCES)))


def test_train_uses_the_mix(tiny_dataset, tiny_tokenizer, tmp_path):
    from conftest import debug_config

    from mmmgen.model.batching import build_datasets

    cfg = debug_config(tiny_dataset, tiny_tokenizer, tmp_path / "run", mix="POP=0,ROCK=40")
    data = build_datasets(cfg, _tokenizer(tiny_tokenizer))
    assert data.stats["train"]["windows"] == 40
    assert data.stats["train"]["mix"]["ROCK"]["selected"] == 40 and data.stats["train"]["mix"]["POP"]["selected"] == 0  # top-level files: by genre


def _tokenizer(path):
    from mmmgen.model.tokenizer import load_tokenizer

    return load_tokenizer(path)
