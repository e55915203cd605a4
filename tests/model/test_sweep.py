"""Hyperparameter sweeps: the W&B sweep file, a tiny sweep end to end, resume, pruning, W&B hand-over
and two workers sharing one study (SQLite here; a real PostgreSQL server in the postgres tier)."""

from __future__ import annotations

import csv
import glob
import json
import math
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from mmmgen.cli import main
from mmmgen.config import SweepConfig
from mmmgen.model.sweep import run_sweep
from mmmgen.model.sweep_spec import SweepError, load_sweep, parse_sweep

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = {
    "method": "random",
    "metric": {"name": "eval/loss", "goal": "minimize"},
    "parameters": {
        "learning_rate": {"distribution": "log_uniform_values", "min": 5e-4, "max": 3e-3},
        "gradient_accumulation_steps": {"values": [1, 2, 4]},
    },
}
# Each trial: 2 steps of the debug model on 8 windows, one evaluation, no checkpoint or sample: ~2 s.
FAST = {"preset": "debug", "max_steps": 2, "eval_steps": 100, "save_steps": 100, "logging_steps": 1, "batch_size": 2,
        "max_train_windows": 8, "report_to": "none", "sample_tracks": 0}


def flags(dataset, tokenizer, **settings) -> list[str]:
    """``mmmgen train`` flags of the fast fixed settings."""
    values = {"dataset": dataset, "tokenizer": tokenizer, **FAST, **settings}
    return [arg for k, v in values.items() for arg in (f"--{k.replace('_', '-')}", str(v))]


def write_sweep(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


# --- the sweep file ------------------------------------------------------------------------------
def test_example_file_is_the_tutorials_sweep():
    sweep = load_sweep(ROOT / "configs" / "sweep_lr.yaml", {"dataset": "d", "tokenizer": "t"})
    assert (sweep.method, sweep.metric, sweep.metric_name, sweep.goal) == ("random", "eval_loss", "eval/loss", "minimize")
    lr, gas = sweep.params["learning_rate"], sweep.params["gradient_accumulation_steps"]
    assert (lr.low, lr.high, lr.log, lr.values) == (5e-4, 3e-3, True, None)
    assert gas.values == [1, 2, 4]
    assert sweep.fixed["preset"] == "small" and sweep.fixed["dataset"] == "d"


def test_wandb_schema_variants_and_flags_hold_settings_fixed():
    data = {
        "method": "bayes", "metric": {"name": "eval_loss_per_note"}, "program": "train.py", "command": ["x"],
        "name": "variants", "preset": "debug",
        "parameters": {
            "learning-rate": {"min": "5e-4", "max": 0.003},  # YAML 1.1 reads 5e-4 as text
            "n_layer": {"min": 1, "max": 3},  # ints: int_uniform
            "warmup_ratio": {"distribution": "q_uniform", "min": 0.0, "max": 0.1, "q": 0.05},
            "weight_decay": {"distribution": "log_uniform", "min": -5, "max": -2},  # exponents
            "dropout": {"value": 0.2},
            "batch_size": {"values": [2, 4]},
        },
        "train": {"dataset": "d", "tokenizer": "t"},
    }
    sweep = parse_sweep(data, {"batch_size": 8})
    p = sweep.params
    assert (sweep.name, sweep.metric, sweep.goal) == ("variants", "eval_loss_per_note", "minimize")
    assert (p["learning_rate"].low, p["learning_rate"].log) == (5e-4, False)
    assert p["n_layer"].integer and p["n_layer"].grid() == [1, 2, 3]
    assert p["warmup_ratio"].grid() == pytest.approx([0.0, 0.05, 0.1])
    assert p["weight_decay"].log and p["weight_decay"].low == pytest.approx(math.exp(-5))
    assert "batch_size" not in p and sweep.fixed["batch_size"] == 8 and sweep.fixed["dropout"] == 0.2
    cfg = sweep.config({"learning_rate": 1e-3, "n_layer": 2}, "run")
    assert (cfg.preset, cfg.n_layer, cfg.batch_size, cfg.output_dir) == ("debug", 2, 8, "run")


BAD = [
    ({"methd": "random"}, "unknown keys ['methd']"),
    ({"train": {"datset": "d"}}, "unknown keys ['train.datset']"),
    ({"method": "hyperband"}, "need method: one of"),
    ({"metric": {"name": "eval/accuracy"}}, "metric 'eval/accuracy' is not reported by training"),
    ({"metric": {"name": "eval/loss", "goal": "lowest"}}, "goal: minimize|maximize"),
    ({"parameters": {"lr": {"values": [1e-3]}}}, "parameters.lr is not a `mmmgen train` setting"),
    ({"parameters": {"learning_rate": {"distribution": "gaussian", "min": 0, "max": 1}}}, "distribution 'gaussian' is unknown"),
    ({"parameters": {"learning_rate": {"distribution": "normal", "mu": 0}}}, "must be a mapping of"),
    ({"parameters": {"learning_rate": {"distribution": "normal"}}}, "is not supported offline"),
    ({"parameters": {"learning_rate": {"distribution": "log_uniform_values", "min": 0, "max": 1}}}, "min > 0 for log"),
    ({"parameters": {"learning_rate": {"min": 0.003, "max": 0.001}}}, "need min < max"),
    ({"parameters": {"learning_rate": {"distribution": "uniform", "min": "fast", "max": 1}}}, "must be a number"),
    ({"parameters": {"gradient_accumulation_steps": {"min": 1, "max": 2.5}}}, "is an integer setting"),
    ({"parameters": {"preset": {"values": ["debug", "huge"]}}}, "preset must be one of"),
    ({"parameters": {"batch_size": {"values": [0, 2]}}}, "--batch-size must be at least 1"),
    ({"parameters": {"learning_rate": {"values": []}}}, "non-empty list"),
    ({"parameters": {"output_dir": {"values": ["a", "b"]}}}, "parameters.output_dir is not"),
    ({"parameters": {"learning_rate": {"values": [0.001]}}, "learning_rate": 0.002}, "also a fixed setting"),
    ({"train": {"output_dir": "x"}}, "set per trial"),
    ({"method": "grid"}, "method grid needs values"),
    ({"early_terminate": {"type": "envelope"}}, "early_terminate must be"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_bad_input_is_a_clear_error(change, message):
    data = {**TUTORIAL, "train": {"dataset": "d", "tokenizer": "t"}, **change}
    with pytest.raises(SweepError, match=None) as err:
        parse_sweep(data)
    assert message in str(err.value)


def test_cli_rejects_bad_input_before_any_trial(tmp_path, tiny_dataset, capsys):
    bad = write_sweep(tmp_path / "bad.yaml", {**TUTORIAL, "metric": {"name": "eval/bleu"}})
    out = tmp_path / "out"
    assert main(["sweep", str(bad), "--out", str(out), *flags(tiny_dataset, tmp_path)]) == 2
    assert "eval/bleu" in capsys.readouterr().err and not out.exists()
    good = write_sweep(tmp_path / "good.yaml", TUTORIAL)
    assert main(["sweep", str(good), "--out", str(out), *flags(tiny_dataset, tmp_path / "no_tokenizer")]) == 2
    assert "tokenizer folder not found" in capsys.readouterr().err and not out.exists()
    assert main(["sweep", str(good), "--out", str(out), "--output-dir", "x", "--dataset", "d"]) == 2
    assert "set per trial" in capsys.readouterr().err


def test_help_lists_sweep_and_train_flags(capsys):
    assert main(["sweep", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--trials" in text and "--storage" in text and "--learning-rate" in text and "--learning_rate" not in text  # hyphenated, once


# --- a tiny sweep end to end ---------------------------------------------------------------------
@pytest.fixture
def one_thread():
    """The debug model trains fastest on one thread (and wastes no CPU spinning on a busy machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_tiny_sweep_end_to_end_then_best_yaml_trains(tmp_path, tiny_dataset, tiny_tokenizer, capsys, one_thread):
    sweep, out = write_sweep(tmp_path / "lr.yaml", TUTORIAL), tmp_path / "sweep"
    argv = ["sweep", str(sweep), "--out", str(out), "--trials", "3", *flags(tiny_dataset, tiny_tokenizer)]
    assert main(argv) == 0
    assert "best: trial" in capsys.readouterr().out
    rows = read_rows(out / "results.csv")
    assert len(rows) == 3 and [r["number"] for r in rows] == ["0", "1", "2"]
    assert all(r["state"] == "COMPLETE" and math.isfinite(float(r["eval_loss"])) for r in rows)
    assert all(5e-4 <= float(r["learning_rate"]) <= 3e-3 and r["gradient_accumulation_steps"] in "124" for r in rows)
    for r in rows:  # every trial is a normal run folder
        run = Path(r["run_dir"])
        assert run.name == f"trial-{int(r['number']):04d}"
        assert {"train_config.yaml", "metrics.json", "README.md", "model.safetensors"} <= {p.name for p in run.iterdir()}
        assert json.loads((run / "metrics.json").read_text())["eval_loss"] == pytest.approx(float(r["eval_loss"]))
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    best = min(rows, key=lambda r: float(r["eval_loss"]))
    settings = yaml.safe_load((out / "best.yaml").read_text())
    assert settings["learning_rate"] == pytest.approx(float(best["learning_rate"]))
    assert settings["gradient_accumulation_steps"] == int(best["gradient_accumulation_steps"])
    assert "output_dir" not in settings and settings["max_steps"] == 2

    assert main(argv) == 0  # resumable: the study already holds its 3 trials, nothing runs
    assert len(read_rows(out / "results.csv")) == 3 and not (out / "trial-0003").exists()

    run = tmp_path / "best_run"
    assert main(["train", "--config", str(out / "best.yaml"), "--output-dir", str(run)]) == 0
    assert math.isfinite(json.loads((run / "metrics.json").read_text())["eval_loss"])


# --- resume, pruning and W&B without training (a stand-in for mmmgen.model.train.train) ---------------
def fake_metrics(cfg, loss: float) -> Path:
    run = Path(cfg.output_dir)
    run.mkdir(parents=True, exist_ok=True)
    (run / "metrics.json").write_text(json.dumps({"eval_loss": loss, "train_loss": loss, "steps": 3}))
    return run


def test_interrupted_trial_resumes_its_run_and_the_budget_holds(tmp_path, tiny_dataset, tiny_tokenizer, monkeypatch):
    calls = []

    def train(cfg):
        calls.append(cfg)
        Path(cfg.output_dir).mkdir(parents=True, exist_ok=True)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return fake_metrics(cfg, cfg.learning_rate * 1000)

    monkeypatch.setattr("mmmgen.model.train.train", train)
    sweep = parse_sweep({**TUTORIAL, "train": {"dataset": str(tiny_dataset), "tokenizer": str(tiny_tokenizer)}})
    cfg = SweepConfig(out=str(tmp_path / "out"), trials=2)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, cfg)
    result = run_sweep(sweep, cfg)
    assert [c.resume for c in calls] == [False, True, False]
    assert calls[1].output_dir == calls[0].output_dir and calls[1].learning_rate == calls[0].learning_rate
    states = [(r["number"], r["state"], r["retry_of"], r["error"]) for r in result.rows]
    assert states == [(0, "FAIL", None, "interrupted"), (1, "COMPLETE", 0, None), (2, "COMPLETE", None, None)]
    assert run_sweep(sweep, cfg).rows == result.rows  # the budget is spent: nothing runs


def test_a_study_belongs_to_one_sweep_and_a_bad_storage_is_an_error(tmp_path, tiny_dataset, tiny_tokenizer, monkeypatch):
    monkeypatch.setattr("mmmgen.model.train.train", lambda cfg: fake_metrics(cfg, 1.0))
    train = {"dataset": str(tiny_dataset), "tokenizer": str(tiny_tokenizer)}
    cfg = SweepConfig(out=str(tmp_path / "out"), trials=1)
    assert run_sweep(parse_sweep({**TUTORIAL, "train": train}), cfg).best["eval_loss"] == 1.0
    other = parse_sweep({**TUTORIAL, "metric": {"name": "train/loss"}, "train": train})
    with pytest.raises(SweepError, match="holds another sweep"):
        run_sweep(other, cfg)
    with pytest.raises(SweepError, match="bad --storage"):
        run_sweep(other, SweepConfig(out=str(tmp_path / "out"), storage="nosuchdb://host/db"))


def test_failing_trials_are_recorded_and_a_worker_stops_after_three(tmp_path, tiny_dataset, tiny_tokenizer, monkeypatch):
    def train(cfg):
        raise RuntimeError("out of memory")

    monkeypatch.setattr("mmmgen.model.train.train", train)
    sweep = write_sweep(tmp_path / "lr.yaml", {**TUTORIAL, "train": {"dataset": str(tiny_dataset), "tokenizer": str(tiny_tokenizer)}})
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "out"), "--trials", "6"]) == 1  # no trial completed
    rows = read_rows(tmp_path / "out" / "results.csv")
    assert [(r["state"], r["error"]) for r in rows] == [("FAIL", "RuntimeError: out of memory")] * 3
    assert not (tmp_path / "out" / "best.yaml").exists()


def test_pruning_stops_hopeless_trials_through_a_trainer_callback(tmp_path, tiny_dataset, tiny_tokenizer, monkeypatch):
    stopped = []

    def train(cfg, callbacks=()):
        loss = 1.0 if len(stopped) < 2 else 10.0  # the first two trials are good, the others hopeless
        control = SimpleNamespace(should_training_stop=False)
        for step in (1, 2, 3, 3):  # the final evaluation repeats the last step
            for cb in callbacks:
                cb.on_evaluate(None, SimpleNamespace(global_step=step), control, metrics={"eval_loss": loss / step})
            if control.should_training_stop:
                break
        stopped.append(control.should_training_stop)
        return fake_metrics(cfg, loss)

    monkeypatch.setattr("mmmgen.model.train.train", train)
    data = {**TUTORIAL, "method": "grid", "parameters": {"learning_rate": {"values": [1e-3, 2e-3, 3e-3, 4e-3]}},
            "train": {"dataset": str(tiny_dataset), "tokenizer": str(tiny_tokenizer)}}
    result = run_sweep(parse_sweep(data), SweepConfig(out=str(tmp_path / "out"), trials=4, prune="median"))
    assert [r["state"] for r in result.rows] == ["COMPLETE", "COMPLETE", "PRUNED", "PRUNED"]
    assert stopped == [False, False, True, True] and len({r["learning_rate"] for r in result.rows}) == 4
    assert result.best["eval_loss"] == 1.0 and result.rows[2]["eval_loss"] == 10.0


def _seed_that_runs_last(data: dict, value: float) -> int:
    """A grid sampler seed whose third learning rate is ``value`` (the grid order is random)."""
    import optuna

    from mmmgen.model.sweep import _sampler

    sweep = parse_sweep(data)
    for seed in range(50):
        study = optuna.create_study(sampler=_sampler(sweep, seed))
        order = []
        for i in range(3):
            trial = study.ask()
            order.append(sweep.params["learning_rate"].suggest(trial))
            if i < 2:  # telling the last one ends the grid (Study.stop outside optimize)
                study.tell(trial, 0.0)
        if order[-1] == value:
            return seed
    raise AssertionError("no seed puts the value last")


def test_pruning_end_to_end_with_real_training(tmp_path, tiny_dataset, tiny_tokenizer, capsys, one_thread):
    """Real debug trainings: a learning rate of 1e-9 never learns and is stopped at its first evaluation."""
    data = {**TUTORIAL, "method": "grid", "parameters": {"learning_rate": {"values": [3e-3, 2e-3, 1e-9]}}}
    sweep, out = write_sweep(tmp_path / "prune.yaml", data), tmp_path / "sweep"
    seed = _seed_that_runs_last({**data, "train": {"dataset": str(tiny_dataset), "tokenizer": str(tiny_tokenizer)}}, 1e-9)  # the median pruner starts judging after two trials
    fixed = flags(tiny_dataset, tiny_tokenizer, max_steps=12, eval_steps=3, warmup_ratio=0.0, batch_size=4)
    assert main(["sweep", str(sweep), "--out", str(out), "--trials", "3", "--prune", "median", "--sampler-seed", str(seed), *fixed]) == 0
    rows = {float(r["learning_rate"]): r for r in read_rows(out / "results.csv")}
    assert {rows[3e-3]["state"], rows[2e-3]["state"]} == {"COMPLETE"}
    hopeless = rows[1e-9]
    assert hopeless["state"] == "PRUNED"
    steps = json.loads((Path(hopeless["run_dir"]) / "metrics.json").read_text())["steps"]
    assert steps < 12  # training stopped early, not after the fact
    assert float(hopeless["eval_loss"]) > max(float(rows[lr]["eval_loss"]) for lr in (3e-3, 2e-3))


def test_wandb_backend_hands_over_the_same_sweep(tmp_path, tiny_dataset, tiny_tokenizer, monkeypatch):
    seen = {}
    fake = SimpleNamespace(api=SimpleNamespace(api_key="k"), sweep=lambda config, **kw: seen.update(config=config, **kw) or "abc",
                           agent=lambda sweep_id, **kw: seen.update(sweep_id=sweep_id, **kw))
    monkeypatch.setitem(sys.modules, "wandb", fake)
    data = {**TUTORIAL, "program": "train.py", "project": "mmm",
            "train": {"dataset": str(tiny_dataset), "tokenizer": str(tiny_tokenizer)}}
    run_sweep(parse_sweep(data), SweepConfig(out=str(tmp_path), trials=5, backend="wandb"))
    assert seen["config"] == {"method": "random", "metric": {"name": "eval/loss", "goal": "minimize"},
                              "parameters": TUTORIAL["parameters"], "project": "mmm"}
    assert (seen["sweep_id"], seen["count"], seen["project"]) == ("abc", 5, "mmm")
    monkeypatch.setitem(sys.modules, "wandb", None)  # not installed: a clear error
    with pytest.raises(SweepError, match="needs the wandb package"):
        run_sweep(parse_sweep(data), SweepConfig(out=str(tmp_path), backend="wandb"))


# --- two workers on one study ---------------------------------------------------------------------
def run_two_workers(tmp_path, dataset, tokenizer, storage: str | None, trials: int = 4) -> list[dict]:
    """Start two ``mmmgen sweep`` processes on one storage; check N distinct trials, none run twice."""
    sweep, out = write_sweep(tmp_path / "lr.yaml", TUTORIAL), tmp_path / "shared"
    argv = [sys.executable, "-m", "mmmgen", "sweep", str(sweep), "--out", str(out), "--trials", str(trials),
            *(["--storage", storage] if storage else []), *flags(dataset, tokenizer)]
    workers = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env())
               for _ in range(2)]
    logs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], "\n".join(log[-3000:] for log in logs)
    import optuna

    study = optuna.load_study(study_name="lr", storage=storage or f"sqlite:///{out / 'sweep.db'}")
    # A worker that asks for a trial after the other took the last one records it as skipped
    # (optuna cannot delete a trial): pruned at once, no parameters, nothing trained.
    skipped = [t for t in study.get_trials() if t.user_attrs.get("skipped")]
    assert all(t.state.name == "PRUNED" and t.number >= trials and not t.params for t in skipped)
    assert len(skipped) <= 2  # at most one per worker
    trials_ = [t for t in study.get_trials() if not t.user_attrs.get("skipped")]
    assert sorted(t.number for t in trials_) == list(range(trials))
    assert all(t.state.name == "COMPLETE" for t in trials_)
    assert len({tuple(sorted(t.params.items())) for t in trials_}) == trials  # distinct parameter sets
    runs = [t.user_attrs["run_dir"] for t in trials_]
    assert len(set(runs)) == trials == len(list(out.glob("trial-*")))
    for run in runs:  # each trained once: one training session in its command log
        assert (Path(run) / "metrics.json").is_file()
        assert sum(line.startswith("#") for line in (Path(run) / "command.txt").read_text().splitlines()) == 1
    rows = read_rows(out / "results.csv")
    assert len(rows) == trials
    return rows


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # the stand-in worker asks outside optimize
def test_a_worker_that_comes_second_to_the_last_trial_trains_nothing(tmp_path, tiny_dataset, tiny_tokenizer, monkeypatch):
    """The race of two workers made certain: the other takes the last trial between our count and our ask."""
    import mmmgen.model.sweep as S

    opened = S.open_study

    def open_then_race(*args, **kwargs):
        study, url = opened(*args, **kwargs)
        optimize = study.optimize

        def other_worker_first(*a, **kw):
            other = study.ask()  # the other worker's trial, still running
            optimize(*a, **kw)
            study.tell(other, 1.0)
        study.optimize = other_worker_first
        return study, url

    monkeypatch.setattr(S, "open_study", open_then_race)
    sweep = parse_sweep({**TUTORIAL, **FAST, "dataset": str(tiny_dataset), "tokenizer": str(tiny_tokenizer)})
    result = run_sweep(sweep, SweepConfig(out=str(tmp_path), trials=1))
    assert [r["number"] for r in result.rows] == [0]  # the other's; ours is not a row
    assert not list(tmp_path.glob("trial-*"))  # nothing trained here
    import optuna

    ours = optuna.load_study(study_name=result.study, storage=f"sqlite:///{tmp_path / 'sweep.db'}").get_trials()[1]
    assert (ours.state.name, ours.user_attrs.get("skipped"), ours.params) == ("PRUNED", True, {})


def test_two_workers_share_one_sqlite_study(tmp_path, tiny_dataset, tiny_tokenizer):
    run_two_workers(tmp_path, tiny_dataset, tiny_tokenizer, storage=None)


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    which = shutil.which("initdb")
    path = Path(found[-1]).parent if found else Path(which).parent if which else None
    return path if path and (path / "pg_ctl").exists() else None


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_share_one_postgres_study(tmp_path, tiny_dataset, tiny_tokenizer):
    pytest.importorskip("psycopg2")
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed (Debian: apt-get install postgresql)")
    as_user: list[str] = []
    user = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the server")
    data = Path(tempfile.mkdtemp(prefix="mmmgen-pg-"))  # not under pytest's root-only tmp folders
    if user is not None:
        os.chown(data, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"] if shutil.which("runuser") else ["su", "postgres", "-s", "/bin/sh", "-c"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def pg(*args: str, check: bool = True) -> None:
        cmd = [str(bin_dir / args[0]), *args[1:]]
        cmd = [*as_user, shlex.join(cmd)] if as_user[:1] == ["su"] else [*as_user, *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert not check or out.returncode == 0, f"{args[0]} failed: {out.stdout[-1500:]}{out.stderr[-1500:]}"

    db = data / "db"
    try:
        pg("initdb", "-D", str(db), "-A", "trust", "-U", "mmmgen", "--no-sync")
        pg("pg_ctl", "-D", str(db), "-l", str(data / "log"), "-w", "-t", "60", "-o",
           f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        pg("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "mmmgen", "sweep")
        rows = run_two_workers(tmp_path, tiny_dataset, tiny_tokenizer, f"postgresql+psycopg2://mmmgen@127.0.0.1:{port}/sweep")
        assert not (tmp_path / "shared" / "sweep.db").exists() and len(rows) == 4
    finally:
        pg("pg_ctl", "-D", str(db), "-m", "fast", "stop", check=False)
        shutil.rmtree(data, ignore_errors=True)
