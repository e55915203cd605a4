"""Reading and validating a W&B sweep YAML file: ``load_sweep`` -> ``Sweep``, or ``SweepError``.

``mmmgen sweep SWEEP.yaml --out DIR --trials N`` reads the W&B sweep schema (``load_sweep``)::

    method: random            # grid | random | bayes -> GridSampler | RandomSampler | TPESampler
    metric: {name: eval/loss, goal: minimize}  # eval/loss, eval/perplexity, eval/loss_per_note, train/loss
    parameters:               # `mmmgen train` settings (TrainConfig fields)
      learning_rate: {distribution: log_uniform_values, min: 0.0005, max: 0.003}
      gradient_accumulation_steps: {values: [1, 2, 4]}
      warmup_ratio: {value: 0.01}                # held fixed
    early_terminate: {type: hyperband, min_iter: 2, eta: 3}  # optional: prune on the eval metric
    run_cap: 20               # optional: the default of --trials
    train: {dataset: data/dataset, tokenizer: data/tokenizer, preset: small}  # fixed settings

A parameter takes ``value``, ``values`` or ``distribution`` with ``min``/``max``: ``uniform``,
``int_uniform``, ``q_uniform`` (``q``), ``log_uniform_values``, ``inv_log_uniform_values``,
``log_uniform``/``inv_log_uniform`` (bounds are exponents), ``categorical``, ``constant``.
``grid`` needs values or integer/``q`` ranges. Fixed settings go under ``train:`` or at the top
level; ``mmmgen train`` flags given to ``mmmgen sweep`` win over the file and take a setting out
of the search. ``name``/``description``/``project``/``entity`` are kept (study name, W&B);
``program``/``command`` are ignored (trials call ``mmmgen.model.train.train``); ``output_dir`` and
``resume`` are set per trial. Bad input raises ``SweepError`` before any trial runs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmmgen.config import TrainConfig
from mmmgen.errors import MMMGenError

log = logging.getLogger(__name__)

METRICS = ("eval_loss", "eval_perplexity", "eval_loss_per_note", "train_loss")  # in RUN/metrics.json
METHODS = ("grid", "random", "bayes")
KEYS = {"method", "metric", "parameters", "early_terminate", "run_cap", "name", "description", "project",
        "entity", "program", "command", "train"}
PARAM_KEYS = {"value", "values", "distribution", "min", "max", "q", "probabilities"}
RANGES = ("uniform", "int_uniform", "q_uniform", "log_uniform_values", "inv_log_uniform_values", "log_uniform",
          "inv_log_uniform")
UNBOUNDED = ("normal", "q_normal", "log_normal", "q_log_normal", "q_log_uniform", "q_log_uniform_values",
             "beta", "q_beta")
PER_TRIAL = ("output_dir", "resume")


class SweepError(MMMGenError):
    """A sweep file or setting that cannot work (raised before any trial runs)."""


@dataclass
class Param:
    """One searched setting: ``values`` (categorical) or a ``low``..``high`` range."""

    name: str
    values: list | None = None
    low: float = 0.0
    high: float = 0.0
    integer: bool = False
    log: bool = False
    step: float | None = None

    def suggest(self, trial) -> Any:
        """This parameter's value in an Optuna trial."""
        if self.values is not None:
            return trial.suggest_categorical(self.name, self.values)
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def grid(self) -> list:
        """Every value (method ``grid``)."""
        if self.values is not None:
            return list(self.values)
        if self.integer:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step:
            return [self.low + i * self.step for i in range(round((self.high - self.low) / self.step) + 1)]
        msg = f"method grid needs values (or an int_uniform / q_uniform range) for {self.name}"
        raise SweepError(msg)

    def ends(self) -> list:
        """The values checked up front: all categories, or both ends of a range."""
        return list(self.values) if self.values is not None else [self.cast(self.low), self.cast(self.high)]

    def cast(self, x: float) -> Any:
        return int(x) if self.integer else x


@dataclass
class Sweep:
    """A parsed sweep file: what to search, what to optimize, and the fixed training settings."""

    method: str
    metric: str  # key in RUN/metrics.json, e.g. eval_loss
    metric_name: str  # as written in the file, e.g. eval/loss
    goal: str
    params: dict[str, Param]
    fixed: dict[str, Any]
    name: str = "sweep"
    early_terminate: dict | None = None
    run_cap: int | None = None
    raw: dict = field(default_factory=dict)

    def config(self, params: dict, output_dir: str | Path, resume: bool = False) -> TrainConfig:
        """The ``TrainConfig`` of one trial."""
        return TrainConfig(**{**self.fixed, **params, "output_dir": str(output_dir), "resume": resume})

    def first(self) -> dict:
        return {n: p.ends()[0] for n, p in self.params.items()}

    def fingerprint(self) -> str:
        params = {n: dataclasses.asdict(p) for n, p in sorted(self.params.items())}
        return json.dumps([self.method, self.metric, self.goal, params], sort_keys=True, default=str)

    def sign(self) -> int:
        return 1 if self.goal == "minimize" else -1




# --- the sweep file ------------------------------------------------------------------------------
def _check(ok: bool, msg: str) -> None:
    if not ok:
        raise SweepError(msg)


def metric_key(name: str) -> str:
    """``eval/loss`` (W&B) or ``eval_loss`` -> the key training writes to ``metrics.json``."""
    key = str(name).strip().replace("/", "_", 1)
    _check(key in METRICS, f"metric {name!r} is not reported by training; use one of "
           + ", ".join(k.replace("_", "/", 1) for k in METRICS))
    return key


def _kind(name: str) -> tuple[str, bool]:
    """``("int" | "float" | "str" | "bool", None allowed)`` of a TrainConfig field."""
    args = typing.get_args(hint := typing.get_type_hints(TrainConfig)[name]) or (hint,)
    return next(a for a in args if a is not type(None)).__name__, type(None) in args


def _coerce(name: str, value: Any, choices: list | None = None) -> Any:
    """``value`` as the type of TrainConfig field ``name`` (YAML 1.1 reads 5e-4 as a string)."""
    kind, optional = _kind(name)
    number = kind in ("int", "float") and not isinstance(value, bool)
    try:
        value = float(value) if number and isinstance(value, str) else value
        if (value is None and optional) or (kind == "bool" and isinstance(value, bool)) or (
                kind == "str" and isinstance(value, str) and (not choices or value in choices)):
            return value
        if number and isinstance(value, (int, float)) and (kind == "float" or float(value).is_integer()):
            return int(value) if kind == "int" else value
    except (TypeError, ValueError, OverflowError):
        pass
    msg = f"{name} must be {f'one of {choices}' if choices else f'a {kind}'}, got {value!r}"
    raise SweepError(msg)


def _bound(name: str, spec: dict, key: str) -> float:
    _check(key in spec, f"parameters.{name}: distribution {spec.get('distribution', 'uniform')} needs {key}")
    try:
        return float(spec[key])
    except (TypeError, ValueError):
        msg = f"parameters.{name}.{key} must be a number, got {spec[key]!r}"
        raise SweepError(msg) from None


def _parse_param(name: str, spec: Any, choices: list | None) -> Param | Any:
    """A ``Param``, or the plain value of a fixed one (``value`` / ``constant``)."""
    _check(isinstance(spec, dict) and not set(spec) - PARAM_KEYS,
           f"parameters.{name} must be a mapping of {sorted(PARAM_KEYS)} (no nested parameters), got {spec!r}")
    ints = all(isinstance(spec.get(k), int) and not isinstance(spec.get(k), bool) for k in ("min", "max"))
    dist = spec.get("distribution") or ("constant" if "value" in spec else "categorical" if "values" in spec
                                        else "int_uniform" if ints else "uniform")
    if "probabilities" in spec:
        log.warning("parameters.%s.probabilities is ignored: Optuna draws every value alike", name)
    if dist == "constant":
        return _coerce(name, spec["value"], choices) if "value" in spec else _bound(name, spec, "value")
    if dist == "categorical":
        values = spec.get("values")
        values = [_coerce(name, v, choices) for v in values] if isinstance(values, list) else []
        _check(values and len({repr(v) for v in values}) == len(values),
               f"parameters.{name}.values must be a non-empty list of distinct values, got {spec.get('values')!r}")
        return Param(name, values=values)
    why = "is not supported offline (unbounded or quantized-log): use --backend wandb or" if dist in UNBOUNDED else "is unknown; use"
    _check(dist in RANGES, f"parameters.{name}: distribution {dist!r} {why} one of {[*RANGES, 'categorical', 'constant']}")
    kind = _kind(name)[0]
    _check(kind in ("int", "float"), f"parameters.{name} is not a number: search it with values")
    lo, hi = _bound(name, spec, "min"), _bound(name, spec, "max")
    if dist in ("log_uniform", "inv_log_uniform"):  # W&B: bounds are natural-log exponents
        lo, hi = (math.exp(lo), math.exp(hi)) if dist == "log_uniform" else (math.exp(-hi), math.exp(-lo))
    step = _bound(name, spec, "q") if dist == "q_uniform" else None
    p = Param(name, low=lo, high=hi, integer=dist == "int_uniform" or kind == "int", log="log" in dist, step=step)
    _check(lo < hi and (lo > 0 or not p.log) and (step is None or step > 0),
           f"parameters.{name}: need min < max (min > 0 for log, q > 0), got min {lo:g}, max {hi:g}")
    _check(not p.integer or all(float(x).is_integer() for x in (lo, hi, step or 1)),
           f"parameters.{name} is an integer setting: min, max and q must be integers")
    return p


def parse_sweep(data: Any, overrides: dict | None = None, name: str = "sweep") -> Sweep:
    """Check a W&B sweep mapping; ``overrides`` (flags) hold training settings fixed.

    Raises:
        SweepError: unknown keys, a wrong distribution, a metric training does not report, ...
    """
    fields = {f.name: f.metadata.get("choices") for f in dataclasses.fields(TrainConfig) if f.init}
    data = data if isinstance(data, dict) else {"a YAML mapping": data}
    train = data.get("train") or {}
    unknown = sorted(set(data) - KEYS - set(fields)) + sorted(f"train.{k}" for k in set(train) - set(fields))
    _check(isinstance(train, dict) and not unknown,
           f"unknown keys {unknown or ['train']}: expected {sorted(KEYS)} or `mmmgen train` settings")
    for key in {"program", "command"} & set(data):
        log.info("sweep file: %s is ignored (each trial calls mmmgen.model.train.train)", key)
    metric = data.get("metric") or {}
    _check(data.get("method") in METHODS and isinstance(metric, dict) and not set(metric) - {"name", "goal", "target"}
           and metric.get("goal", "minimize") in ("minimize", "maximize"),
           f"need method: one of {list(METHODS)} and metric: {{name, goal: minimize|maximize}}, "
           f"got method {data.get('method')!r}, metric {metric!r}")
    _check(not set(train) & set(data), f"{sorted(set(train) & set(data))} set both at the top level and under train:")
    fixed = {k: _coerce(k, v, fields[k]) for k, v in {**data, **train}.items() if k in fields}
    _check(isinstance(data.get("parameters"), dict) and data["parameters"],
           "parameters must be a mapping of `mmmgen train` settings to search")
    params = {}
    for raw, spec in data["parameters"].items():
        pname = str(raw).replace("-", "_")
        _check(pname not in fixed, f"parameters.{raw} is also a fixed setting")
        _check(pname in fields and pname not in PER_TRIAL, f"parameters.{raw} is not a `mmmgen train` setting to search")
        parsed = _parse_param(pname, spec, fields[pname])
        (params if isinstance(parsed, Param) else fixed)[pname] = parsed
    for key, value in (overrides or {}).items():
        if params.pop(key, None) is not None:
            log.info("--%s is given: %s is held fixed, not searched", key.replace("_", "-"), key)
        fixed[key] = value
    _check(not set(fixed) & set(PER_TRIAL), f"{sorted(set(fixed) & set(PER_TRIAL))} are set per trial; leave them out")
    _check(bool(params), "parameters holds nothing to search (only fixed values)")
    for p in params.values() if data["method"] == "grid" else ():
        p.grid()  # raises for a continuous range
    early, run_cap = data.get("early_terminate"), data.get("run_cap")
    _check(early is None or (isinstance(early, dict) and early.get("type") == "hyperband"
                             and not set(early) - {"type", "min_iter", "max_iter", "eta", "s", "strict"}),
           f"early_terminate must be {{type: hyperband, min_iter, max_iter, eta}}, got {early!r}")
    _check(run_cap is None or (isinstance(run_cap, int) and run_cap > 0), f"run_cap must be a positive integer, got {run_cap!r}")
    metric_name = str(metric.get("name", "eval/loss"))
    sweep = Sweep(data["method"], metric_key(metric_name), metric_name, metric.get("goal", "minimize"), params, fixed,
                  str(data.get("name") or name), early, run_cap, data)
    checks = [({}, " (set it under train: in the sweep file or as a flag)")]
    checks += [({p.name: v}, f" (parameters.{p.name} = {v!r})") for p in params.values() for v in p.ends()]
    for values, where in checks:  # every value searched must make a valid TrainConfig
        try:
            sweep.config({**sweep.first(), **values}, "check")
        except (TypeError, ValueError) as exc:
            raise SweepError(str(exc) + where) from None
    return sweep


def load_sweep(path: str | Path, overrides: dict | None = None) -> Sweep:
    """Read and check a sweep YAML file (see the module docstring); ``overrides`` win."""
    import yaml

    path = Path(path)
    _check(path.is_file(), f"sweep file not found: {path}")
    try:
        return parse_sweep(yaml.safe_load(path.read_text()), overrides, name=path.stem)
    except (SweepError, yaml.YAMLError) as exc:
        msg = f"{path}: {exc}"
        raise SweepError(msg) from None


def wandb_sweep_config(sweep: Sweep) -> dict:
    """The sweep as W&B takes it: no training settings, the metric by its W&B name."""
    config = {k: v for k, v in sweep.raw.items() if k in KEYS - {"train", "program", "command"}}
    config["metric"] = {**(sweep.raw.get("metric") or {}), "name": sweep.metric.replace("_", "/", 1), "goal": sweep.goal}
    config["parameters"] = {k: v for k, v in sweep.raw["parameters"].items() if str(k).replace("-", "_") in sweep.params}
    return config
