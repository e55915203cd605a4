"""Running a sweep offline with Optuna (resumable, shared by workers) or on W&B, and its reports.

Each trial is a normal run folder ``DIR/trial-NNNN``. The study lives in ``DIR/sweep.db``
(SQLite) unless ``--storage`` names another Optuna RDB URL (``postgresql://user@host/db``);
workers running the same command on one storage share the study. ``--trials N`` counts the
whole study: a worker stops once N trials are finished or running, so a rerun tops a stopped
sweep up to N, and a trial stopped by Ctrl+C (or whose worker vanished: heartbeat) is retried,
resuming its run folder from the last checkpoint. Each worker writes ``DIR/results.csv``,
``DIR/best.yaml`` (``mmmgen train --config best.yaml --output-dir RUN``) and ``DIR/sweep.png``.
Pruning (``--prune``, or ``early_terminate``) reports the eval metric at each evaluation through a
``TrainerCallback`` (``pruning_callback``) handed to ``mmmgen.model.train.train(cfg, callbacks=[...])``.
"""

from __future__ import annotations

import csv
import dataclasses
import inspect
import io
import json
import logging
import math
import os
import random
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from mmmgen.config import SweepConfig
from mmmgen.model.sweep_spec import (
    KEYS,
    METHODS,
    METRICS,
    PARAM_KEYS,
    PER_TRIAL,
    RANGES,
    UNBOUNDED,
    Param,
    Sweep,
    SweepError,
    _check,
    load_sweep,
    metric_key,
    parse_sweep,
    wandb_sweep_config,
)

__all__ = [  # with the sweep-file names of mmmgen.model.sweep_spec, still importable from here
    "DEFAULT_TRIALS", "HEARTBEAT_S", "KEYS", "METHODS", "METRICS", "PARAM_KEYS", "PER_TRIAL", "RANGES",
    "UNBOUNDED", "Param", "Sweep", "SweepError", "SweepResult", "format_summary", "load_sweep", "metric_key",
    "open_study", "parse_sweep", "pruning_callback", "run_sweep", "trial_rows", "wandb_sweep_config",
    "write_reports", "write_results",
]

log = logging.getLogger(__name__)

DEFAULT_TRIALS = 10
HEARTBEAT_S = 30


@dataclass
class SweepResult:
    """What ``run_sweep`` did: the study, one row per trial (``trial_rows``), the best row, files."""

    study: str
    storage: str
    rows: list[dict]
    best: dict | None
    files: list[Path]
    params: list[str] = field(default_factory=list)
    metric: str = "eval_loss"





def _check_inputs(sweep: Sweep) -> None:
    """Dataset, tokenizer and metric, checked before any trial."""
    from mmmgen.data.prepare import load_report

    cfg = sweep.config(sweep.first(), "check")
    for dataset in sweep.params["dataset"].values if "dataset" in sweep.params else [cfg.dataset]:
        _check(not sweep.metric.startswith("eval_") or load_report(dataset).get("windows", {}).get("test"),
               f"the dataset {dataset} has no test split, so training reports no {sweep.metric_name}; use train/loss")
    for tokenizer in sweep.params["tokenizer"].values if "tokenizer" in sweep.params else [cfg.tokenizer]:
        _check(Path(tokenizer).is_dir(), f"tokenizer folder not found: {tokenizer}")


# --- Optuna --------------------------------------------------------------------------------------
def _budget(sweep: Sweep, cfg: SweepConfig) -> int:
    n = cfg.trials or sweep.run_cap or DEFAULT_TRIALS
    if sweep.method == "grid" and n > (size := math.prod(len(p.grid()) for p in sweep.params.values())):
        log.info("the grid has %d points: %d trials, not %d", size, size, n)
        n = size
    return n


def _used(trials) -> int:
    """Trials that count against the budget: all but skipped ones and failures already retried."""
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
    return sum(t.state.name != "FAIL" or t.number not in retried for t in trials if not t.user_attrs.get("skipped"))


def _sampler(sweep: Sweep, seed: int | None):
    import optuna

    if sweep.method == "grid":
        return optuna.samplers.GridSampler({n: p.grid() for n, p in sweep.params.items()}, seed=seed)
    if sweep.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def _pruner(sweep: Sweep, mode: str, eval_steps: int):
    """Optuna pruner; its steps are training steps (W&B's min_iter/max_iter count evaluations)."""
    import optuna

    mode = ("hyperband" if sweep.early_terminate else "none") if mode == "auto" else mode
    if mode == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2)
    if mode == "hyperband":
        et = sweep.early_terminate or {}
        top = int(et["max_iter"]) * eval_steps if "max_iter" in et else "auto"
        return optuna.pruners.HyperbandPruner(int(et.get("min_iter", 1)) * eval_steps, top, int(et.get("eta", 3)))
    return optuna.pruners.NopPruner()


def _retry_callback(max_retry: int | None = None):
    import optuna
    import optuna.storages as S

    cls = getattr(S, "RetryHeartbeatStaleTrialCallback", None) or S.RetryFailedTrialCallback  # optuna < 4.9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return cls(max_retry=max_retry)


def pruning_callback(trial, metric: str):
    """A ``TrainerCallback`` reporting ``metric`` to an Optuna ``trial`` at each evaluation; it stops
    training and sets ``pruned`` when the pruner finds the trial hopeless."""
    from transformers import TrainerCallback

    class OptunaPruning(TrainerCallback):
        def __init__(self):
            self.pruned, self.steps = False, set()

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            value = (metrics or {}).get(metric)
            if value is None or not math.isfinite(value) or state.global_step in self.steps:
                return  # the final evaluation repeats the last step
            self.steps.add(state.global_step)
            trial.report(float(value), state.global_step)
            if trial.should_prune():
                self.pruned = control.should_training_stop = True

    return OptunaPruning()


def open_study(sweep: Sweep, cfg: SweepConfig, out: Path, eval_steps: int = 1):
    """Create or load the study (``cfg.storage`` or ``OUT/sweep.db``); two workers may race."""
    import optuna
    import sqlalchemy.exc
    from optuna.storages import RDBStorage

    url = cfg.storage or f"sqlite:///{(out / 'sweep.db').resolve()}"
    engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    stale = "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in inspect.signature(
        RDBStorage).parameters else "failed_trial_callback"
    for attempt in range(6):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S,
                                     grace_period=4 * HEARTBEAT_S, **{stale: _retry_callback(max_retry=3)})
            study = optuna.create_study(storage=storage, study_name=cfg.study or sweep.name, load_if_exists=True,
                                        direction=sweep.goal, sampler=_sampler(sweep, cfg.sampler_seed),
                                        pruner=_pruner(sweep, cfg.prune, eval_steps))
            break
        except (sqlalchemy.exc.DBAPIError, optuna.exceptions.StorageInternalError) as exc:  # tables made at once
            if attempt == 5:
                msg = f"cannot open the study storage {_safe(url)}: {exc}"
                raise SweepError(msg) from None
            time.sleep(0.3 + random.random())
        except (sqlalchemy.exc.ArgumentError, ImportError, ValueError) as exc:
            msg = f"bad --storage {_safe(url)}: {exc}"
            raise SweepError(msg) from None
    if study.user_attrs.setdefault("sweep", sweep.fingerprint()) != sweep.fingerprint():
        msg = f"study {study.study_name!r} in {_safe(url)} holds another sweep (method, metric or parameters differ); choose another --study"
        raise SweepError(msg)
    study.set_user_attr("sweep", sweep.fingerprint())
    return study, url


def _safe(url: str) -> str:
    """The URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.rsplit("@", 1)[-1]


def run_sweep(sweep: Sweep, cfg: SweepConfig) -> SweepResult:
    """Run trials until the study holds ``cfg.trials``; write results.csv, best.yaml and sweep.png.

    Raises:
        SweepError / DatasetError: bad input, found before any trial runs.
    """
    _check_inputs(sweep)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.backend == "wandb":
        return _run_wandb(sweep, cfg, out)
    import optuna

    from mmmgen.model import train as T

    budget = _budget(sweep, cfg)
    study, url = open_study(sweep, cfg, out, sweep.config(sweep.first(), "check").eval_steps)
    hook = "callbacks" in inspect.signature(T.train).parameters
    if not isinstance(study.pruner, optuna.pruners.NopPruner) and (not hook or not sweep.metric.startswith("eval_")):
        log.warning("pruning is off: it needs an eval metric and mmmgen.model.train.train(cfg, callbacks=[...])")

    def objective(trial) -> float:
        if _used([t for t in study.get_trials(deepcopy=False) if t.number < trial.number]) >= budget:
            trial.set_user_attr("skipped", True)  # another worker took the last trial meanwhile
            study.stop()
            msg = f"the study already holds its {budget} trials"
            raise optuna.TrialPruned(msg)
        params = {n: p.suggest(trial) for n, p in sweep.params.items()}
        prev = trial.user_attrs.get("run_dir")  # set: a retry (user attributes are copied); resume its run
        run = Path(prev) if prev and Path(prev).is_dir() else (out / f"trial-{trial.number:04d}").resolve()
        for key, value in {"run_dir": str(run), "worker": f"{socket.gethostname()}:{os.getpid()}", "error": None}.items():
            trial.set_user_attr(key, value)
        callbacks = [pruning_callback(trial, sweep.metric)] if hook else []
        start = time.time()
        try:
            T.train(sweep.config(params, run, resume=run.name != f"trial-{trial.number:04d}"),
                    **({"callbacks": callbacks} if hook else {}))
        except KeyboardInterrupt:  # the next worker retries it from its last checkpoint
            trial.set_user_attr("error", "interrupted")
            _retry_callback()(study, next(t for t in study.get_trials() if t.number == trial.number))
            raise
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
            raise
        finally:
            trial.set_user_attr("wall_seconds", round(time.time() - start, 2))
        metrics = json.loads((run / "metrics.json").read_text())
        for key in (*METRICS, "steps"):
            if isinstance(metrics.get(key), (int, float)):
                trial.set_user_attr(key, metrics[key])
        value = metrics.get(sweep.metric)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            msg = f"training reported {sweep.metric} = {value!r}"
            trial.set_user_attr("error", msg)
            raise SweepError(msg)
        if callbacks and callbacks[0].pruned:
            msg = f"{sweep.metric_name} {value:.4g} at step {metrics.get('steps')}"
            raise optuna.TrialPruned(msg)
        return float(value)

    states: list[str] = []

    def after(study, trial) -> None:
        write_results(trial_rows(study, sweep), sweep, out / "results.csv")
        states.append(trial.state.name)
        if states[-3:] == ["FAIL"] * 3:  # something wrong beyond one setting: see the error column
            log.error("this worker's last 3 trials failed (%s); it stops", trial.user_attrs.get("error"))
        if _used(study.get_trials(deepcopy=False)) >= budget or states[-3:] == ["FAIL"] * 3:
            study.stop()

    used = _used(study.get_trials(deepcopy=False))
    log.info("study %s in %s holds %d of %d trials", study.study_name, _safe(url), used, budget)
    try:
        if used < budget:
            study.optimize(objective, callbacks=[after], catch=(Exception,), gc_after_trial=True)
    finally:
        rows = trial_rows(study, sweep)
        write_results(rows, sweep, out / "results.csv")
    best = min((r for r in rows if r["state"] == "COMPLETE"), default=None, key=lambda r: r[sweep.metric] * sweep.sign())
    files = [out / "results.csv", *write_reports(study.study_name, sweep, rows, best, out)]
    return SweepResult(study.study_name, _safe(url), rows, best, files, list(sweep.params), sweep.metric)


# --- reports -------------------------------------------------------------------------------------
def trial_rows(study, sweep: Sweep) -> list[dict]:
    """One row per trial: number, state, metric, parameters, other metrics, wall time, run folder."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        if (a := t.user_attrs).get("skipped"):
            continue
        wall = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        rows.append({"number": t.number, "state": t.state.name, sweep.metric: t.value if t.value is not None else a.get(sweep.metric),
                     **{n: t.params.get(n) for n in sweep.params}, **{k: a.get(k) for k in METRICS if k != sweep.metric},
                     "steps": a.get("steps"), "wall_seconds": round(wall, 2) if wall is not None else a.get("wall_seconds"),
                     "retry_of": t.system_attrs.get("failed_trial"), "run_dir": a.get("run_dir"), "worker": a.get("worker"),
                     "error": a.get("error")})
    return rows


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # workers sharing DIR never see half a file


def write_results(rows: list[dict], sweep: Sweep, path: Path) -> None:
    """``results.csv``: ``trial_rows`` as CSV."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["number", "state", sweep.metric, *sweep.params])
    writer.writeheader()
    writer.writerows(rows)
    _atomic_write(path, buf.getvalue())


def write_reports(study_name: str, sweep: Sweep, rows: list[dict], best: dict | None, out: Path) -> list[Path]:
    """``best.yaml`` (when a trial completed) and ``sweep.png``: the metric against each parameter."""
    import yaml
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    written = []
    if best is not None:
        settings = sweep.config({n: best[n] for n in sweep.params}, "-").to_dict()
        head = (f"# best of study {study_name}: trial {best['number']}, {sweep.metric_name} {best[sweep.metric]:.6g}\n"
                f"# mmmgen train --config best.yaml --output-dir RUN\n")
        body = yaml.safe_dump({k: v for k, v in settings.items() if k not in PER_TRIAL}, sort_keys=False)
        _atomic_write(out / "best.yaml", head + body)
        written.append(out / "best.yaml")
    fig = Figure(figsize=(4 * len(sweep.params), 3.4), layout="constrained")
    for ax, (name, p) in zip(fig.subplots(1, len(sweep.params), squeeze=False)[0], sweep.params.items(), strict=True):
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p.values or [0])
        labels = [repr(v) for v in p.values or []]
        pos = (lambda v: v) if numeric else (lambda v, labels=labels: labels.index(repr(v)))
        for state, style in (("PRUNED", {"marker": "x", "color": "0.6"}), ("COMPLETE", {"marker": "o"})):
            pts = [(pos(r[name]), r[sweep.metric]) for r in rows if r["state"] == state and r[sweep.metric] is not None]
            if pts:
                ax.scatter(*zip(*pts, strict=True), label=state.lower(), **style)
        if best is not None:
            ax.scatter([pos(best[name])], [best[sweep.metric]], marker="*", s=200, color="C3", label="best")
        if p.values is not None:
            ax.set_xticks([pos(v) for v in p.values], [str(v) for v in p.values])
        else:
            pad = (p.high / p.low) ** 0.05 if p.log else 0.05 * (p.high - p.low)
            ax.set_xlim(*((p.low / pad, p.high * pad) if p.log else (p.low - pad, p.high + pad)))
        spread = numeric and p.values and min(p.values) > 0 and max(p.values) >= 20 * min(p.values)
        if p.log or spread:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set(xlabel=name, ylabel=sweep.metric_name)
    if any(ax.collections for ax in fig.axes):
        fig.axes[0].legend(fontsize="small")
    fig.suptitle(f"{study_name}: {sum(r['state'] == 'COMPLETE' for r in rows)} complete of {len(rows)} trials")
    fig.savefig(out / "sweep.png", dpi=90)
    return [*written, out / "sweep.png"]


def format_summary(result: SweepResult) -> str:
    """A few lines for people after ``mmmgen sweep``."""
    states = [r["state"].lower() for r in result.rows]
    lines = [f"study {result.study} ({result.storage}): "
             + (", ".join(f"{states.count(s)} {s}" for s in sorted(set(states))) or "no trials")]
    if result.best is not None:
        values = ", ".join(f"{k}={v:.4g}" if isinstance(v := result.best[k], float) else f"{k}={v}" for k in result.params)
        lines.append(f"best: trial {result.best['number']}, {result.metric} {result.best[result.metric]:.4g} with {values}")
    return "\n".join([*lines, "wrote " + ", ".join(str(p) for p in result.files)])


# --- W&B -----------------------------------------------------------------------------------------
def _run_wandb(sweep: Sweep, cfg: SweepConfig, out: Path) -> SweepResult:
    """Hand the sweep to W&B: ``wandb.sweep`` (or join ``--study SWEEP_ID``), then ``wandb.agent``."""
    try:
        import wandb
    except ImportError:
        msg = "--backend wandb needs the wandb package (pip install wandb) and `wandb login`; the default optuna backend runs offline"
        raise SweepError(msg) from None
    if not (os.environ.get("WANDB_API_KEY") or getattr(getattr(wandb, "api", None), "api_key", None)):
        msg = "--backend wandb needs a W&B login: run `wandb login` or set WANDB_API_KEY"
        raise SweepError(msg)
    from mmmgen.model import train as T

    config, project, entity = wandb_sweep_config(sweep), sweep.raw.get("project") or "mmmgen", sweep.raw.get("entity")
    os.environ.setdefault("WANDB_MODE", "online")  # training alone defaults to offline W&B runs
    sweep_id = cfg.study or wandb.sweep(config, project=project, entity=entity)
    log.info("W&B sweep %s; other machines: mmmgen sweep ... --backend wandb --study %s", sweep_id, sweep_id)

    def one_trial() -> None:
        with wandb.init() as run:
            run_dir = out / f"wandb-{run.id}"
            params = {k.replace("-", "_"): v for k, v in dict(run.config).items() if k.replace("-", "_") in sweep.params}
            T.train(dataclasses.replace(sweep.config(params, run_dir), report_to="wandb"))
            run.summary[config["metric"]["name"]] = json.loads((run_dir / "metrics.json").read_text()).get(sweep.metric)

    wandb.agent(sweep_id, function=one_trial, count=cfg.trials or sweep.run_cap or DEFAULT_TRIALS, project=project, entity=entity)
    return SweepResult(str(sweep_id), "wandb", [], None, [], list(sweep.params), sweep.metric)
