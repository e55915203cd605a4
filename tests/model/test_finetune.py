"""Fine-tuning a trained run on a new MIDI folder: ``prepare --like`` and ``train --init-from`` (on the debug run)."""

from __future__ import annotations

import json

import pytest
from conftest import debug_config, one_thread, write_tiny_midi

from mmmgen.config import PrepareConfig, TrainConfig
from mmmgen.data.prepare import DatasetError, prepare
from mmmgen.model.finetune import CodecMismatchError, extend_tokenizer
from mmmgen.model.run import load_run, load_settings
from mmmgen.text import vocab as V

NEW = "JAZZ"


def _midi(folder, genre: str = NEW, n_files: int = 6):
    """Synthetic songs unlike the debug run's (other seeds, 12 bars) labelled with a genre it never saw."""
    csv = write_tiny_midi(folder, n_files=n_files, n_bars=12)
    lines = (folder / "genres.csv").read_text().splitlines()
    (folder / "genres.csv").write_text("\n".join([lines[0], *(f"{line.split(',')[0]},{genre}" for line in lines[1:])]) + "\n")
    return csv


@pytest.fixture(scope="module")
def like_dataset(debug_run, tmp_path_factory):
    midi = tmp_path_factory.mktemp("ft_midi")
    genres = _midi(midi)
    out = tmp_path_factory.mktemp("ft") / "dataset"
    # settings that differ from the run's on purpose: --like must override them
    prepare(midi, out, PrepareConfig(genres=genres, test_size=0.34, num_proc=1, grid=4, density_levels=3, like=str(debug_run)))
    return out


@pytest.fixture(scope="module")
def finetuned(debug_run, like_dataset, tmp_path_factory):
    from mmmgen.model.train import train

    out = tmp_path_factory.mktemp("ft_run") / "run"
    with one_thread():
        return train(debug_config(like_dataset, "", out, init_from=str(debug_run), max_steps=4, eval_steps=2, save_steps=2))


def test_like_reproduces_the_models_grid_bars_and_density_edges(debug_run, like_dataset):
    settings = load_settings(debug_run)
    report = json.loads((like_dataset / "report.json").read_text())
    for key in ("grid", "bars", "density_levels"):
        assert report["codec"][key] == settings["codec"][key], key
    assert report["density_edges"] == settings["density_edges"]
    assert report["like"]["new_words"] == [V.genre(NEW)]  # everything else is a word the run knows


def test_like_needs_a_trained_model(tmp_path):
    _midi(tmp_path / "midi", n_files=2)
    with pytest.raises(DatasetError, match="not a trained run folder"):
        prepare(tmp_path / "midi", tmp_path / "out", PrepareConfig(num_proc=1, like=str(tmp_path)))


def test_finetuning_adds_new_words_and_names_its_base(debug_run, finetuned):
    base_model, base_tok, _ = load_run(debug_run)
    model, tok, settings = load_run(finetuned)
    word = V.genre(NEW)
    assert word not in base_tok.get_vocab()
    assert tok.get_vocab()[word] == len(base_tok)  # appended after the old ids, which stay as they were
    assert all(tok.get_vocab()[w] == i for w, i in base_tok.get_vocab().items())
    assert model.get_input_embeddings().weight.shape[0] == len(tok) == len(base_tok) + 1
    ids = tok(f"{V.PIECE_START} {word}", add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in ids
    base = settings["base_model"]
    assert base["added_words"] == [word] and base["path"] == str(debug_run.resolve())
    assert NEW in settings["genre_labels"] and "POP" in settings["genre_labels"]  # the new genre and the old ones
    card = (finetuned / "README.md").read_text()
    assert "fine-tuned from" in card and word in card
    config = (finetuned / "train_config.yaml").read_text()
    assert f"init_from: {debug_run}" in config and "learning_rate: 0.001" in config  # fine-tuning default
    assert json.loads((finetuned / "metrics.json").read_text())["steps"] == 4
    assert base_model.config.n_embd == model.config.n_embd  # the base's shape, not the debug preset's


def test_new_rows_start_at_the_mean_of_their_kind(debug_run, like_dataset):
    from mmmgen.data.prepare import load_report
    from mmmgen.model.finetune import base_model, load_base

    cfg = TrainConfig(dataset=str(like_dataset), output_dir="unused", init_from=str(debug_run), preset="debug")
    base = load_base(cfg, load_report(like_dataset))
    model = base_model(base)
    vocab = base.tokenizer.get_vocab()
    genre_ids = [i for w, i in vocab.items() if w.startswith(f"{V.GENRE}=") and i < base.vocab_before]
    weight = model.get_input_embeddings().weight.detach()
    assert len(genre_ids) >= 2
    assert weight[vocab[V.genre(NEW)]].allclose(weight[genre_ids].mean(0))
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()  # tied output rows grew too


def test_dropout_is_the_base_models_unless_given(debug_run, like_dataset):
    import torch

    from mmmgen.data.prepare import load_report
    from mmmgen.model.finetune import base_model, load_base

    cfg = TrainConfig(dataset=str(like_dataset), output_dir="unused", init_from=str(debug_run), preset="debug")
    base = load_base(cfg, load_report(like_dataset))
    saved = json.loads((debug_run / "config.json").read_text())

    def drops(model) -> set[float]:
        return {m.p for name, m in model.named_modules() if isinstance(m, torch.nn.Dropout) and "attn" not in name}

    kept = base_model(base)
    assert drops(kept) == {saved["resid_pdrop"]} and kept.config.embd_pdrop == saved["embd_pdrop"]
    given = base_model(base, dropout=0.3, attention_dropout=0.2)
    assert drops(given) == {0.3} and (given.config.resid_pdrop, given.config.attn_pdrop) == (0.3, 0.2)


def test_new_genre_is_offered_by_generate_and_the_app(finetuned):
    from mmmgen.app import AppSettings, build_app
    from mmmgen.generate.sampling import Sampling
    from mmmgen.generate.song import generate_song
    from mmmgen.model.run import generator_from_run

    generator, _ = generator_from_run(finetuned)
    assert NEW in generator.genres
    song = generate_song(generator, tracks=1, genre=NEW, n_bars=2, sampling=Sampling(seed=0))
    assert song.genre == NEW and V.genre(NEW) in song.text.split() and V.UNK not in song.text
    demo = build_app(generator, AppSettings(bars=2, genres=generator.genres))
    dropdown = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "genre")
    assert NEW in [c[0] if isinstance(c, tuple) else c for c in dropdown.choices]


def test_finetuned_run_evaluates(finetuned, like_dataset):
    from mmmgen.config import EvaluateConfig
    from mmmgen.model.evaluate import evaluate

    results = evaluate(EvaluateConfig(model=str(finetuned), dataset=str(like_dataset), samples=1, tracks=1, bars=2, genre=NEW))
    assert results["likelihood"]["unknown_words"] == 0 and results["validity"]["validity"] == 1.0


def test_dataset_not_prepared_like_the_model_is_refused(debug_run, tmp_path):
    from mmmgen.model.train import train

    midi = tmp_path / "midi"
    midi.mkdir()
    genres = _midi(midi, n_files=3)
    other = tmp_path / "other"
    prepare(midi, other, PrepareConfig(genres=genres, test_size=0, num_proc=1, density_levels=4))  # without --like
    cfg = debug_config(other, "", tmp_path / "run", init_from=str(debug_run))
    with pytest.raises(CodecMismatchError, match=r"density_levels 4 \(model: 10\).*--like"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_cli_reports_the_mismatch_in_one_line(debug_run, tiny_dataset, tmp_path, capsys):
    from mmmgen.cli import main

    midi = tmp_path / "midi"
    midi.mkdir()
    _midi(midi, n_files=3)
    assert main(["prepare", str(midi), str(tmp_path / "d"), "--num-proc", "1", "--grid", "4", "--test-size", "0"]) == 0
    capsys.readouterr()
    code = main(["train", "--init-from", str(debug_run), "--dataset", str(tmp_path / "d"), "--output-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "grid 4 (model: 12)" in err and f"--like {debug_run}" in err


def test_init_from_fixes_shape_and_tokenizer(debug_run, like_dataset, tmp_path):
    from mmmgen.data.prepare import load_report
    from mmmgen.model.batching import TrainError
    from mmmgen.model.finetune import load_base

    with pytest.raises(ValueError, match="--tokenizer cannot be combined"):
        TrainConfig(dataset="d", tokenizer="t", output_dir="o", init_from="default")
    cfg = TrainConfig(dataset=str(like_dataset), output_dir=str(tmp_path), init_from=str(debug_run), n_layer=6)
    with pytest.raises(TrainError, match="--n-layer 6"):
        load_base(cfg, load_report(like_dataset))
    cfg = TrainConfig(dataset="d", output_dir="o", init_from="default", learning_rate=2e-4)
    assert cfg.learning_rate == 2e-4 and cfg.warmup_ratio == 0.02 and cfg.n_layer is None  # flags win; shape from the model
    assert cfg.epochs == 3.0
    assert TrainConfig(dataset="d", output_dir="o", init_from="default", max_minutes=5).epochs > 100  # the clock decides
    assert TrainConfig(dataset="d", output_dir="o", init_from="default", max_minutes=5, epochs=2).epochs == 2


def test_extend_tokenizer_keeps_old_ids(tiny_tokenizer):
    from mmmgen.model.tokenizer import load_tokenizer

    tok = load_tokenizer(tiny_tokenizer)
    same, added = extend_tokenizer(tok, ["BAR_START", "NOTE_ON=60"])
    assert same is tok and added == []
    grown, added = extend_tokenizer(tok, ["GENRE=ZYDECO", "BPM=120", "BAR_START"])
    assert added == ["BPM=120", "GENRE=ZYDECO"]
    assert [grown.get_vocab()[w] for w in added] == [len(tok), len(tok) + 1]
    text = "PIECE_START BPM=120 GENRE=ZYDECO"
    assert grown.convert_ids_to_tokens(grown(text, add_special_tokens=False)["input_ids"]) == text.split()
    assert grown.pad_token == V.PAD and grown.pad_token_id == tok.pad_token_id


def test_keep_best_ends_with_the_weights_of_the_lowest_test_loss(debug_run, like_dataset, tmp_path):
    from transformers import TrainerCallback

    from mmmgen.model.train import train

    class Seen(TrainerCallback):
        def __init__(self):
            self.evals = []

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            self.evals.append((state.global_step, metrics["eval_loss"]))

    seen = Seen()
    cfg = debug_config(like_dataset, "", tmp_path / "run", init_from=str(debug_run), max_steps=8, eval_steps=50,
                       save_steps=50, sample_tracks=0)
    assert cfg.keep_best  # the fine-tuning default
    with one_thread():
        run = train(cfg, callbacks=[seen])
    steps = sorted({s for s, _ in seen.evals})
    assert len(steps) >= 4  # at least once an epoch, although --eval-steps is 50
    best_step, best_loss = min(seen.evals, key=lambda e: (e[1], e[0]))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["kept_step"] == best_step  # the step whose weights were saved
    assert metrics["eval_loss"] == pytest.approx(best_loss, rel=1e-4)  # and the run's loss is theirs
    if best_step != metrics["steps"]:
        assert seen.evals[-1][1] == pytest.approx(best_loss, rel=1e-4)  # re-evaluated after they were put back


def test_keep_best_puts_back_the_weights_of_the_lowest_loss_not_the_last():
    import torch

    from mmmgen.model.trainer import make_keep_best_callback

    model, keep = torch.nn.Linear(2, 2), make_keep_best_callback()
    state = type("State", (), {})()
    seen = {}
    for step, loss in ((2, 5.0), (4, 4.0), (6, 4.5)):
        with torch.no_grad():
            model.weight.fill_(step)
        state.global_step = step
        keep.on_evaluate(None, state, None, model=model, metrics={"eval_loss": loss})
        seen[step] = model.weight.clone()
    with torch.no_grad():
        model.weight.fill_(8)  # the last step, evaluated worse than step 4
    assert keep.restore(model, 8) and keep.best_step == 4
    torch.testing.assert_close(model.weight, seen[4])
    fresh = make_keep_best_callback()
    state.global_step = 8
    fresh.on_evaluate(None, state, None, model=model, metrics={"eval_loss": 1.0})
    assert not fresh.restore(model, 8)  # the last weights are the best: nothing to put back


def test_keep_best_is_off_when_training_from_scratch_and_without_a_test_split(debug_run, like_dataset):
    assert not TrainConfig(dataset="d", tokenizer="t", output_dir="o").keep_best
    assert not TrainConfig(dataset="d", output_dir="o", init_from="default", keep_best=False).keep_best
