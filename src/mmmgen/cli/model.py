"""Sub-commands of the model side: size, train, sweep, evaluate, and serving it (app, space)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

from mmmgen.cli.common import parse_config, tidy_help
from mmmgen.config.threads import apply_threads

log = logging.getLogger("mmmgen")


def cmd_size(argv: Sequence[str]) -> int:
    from mmmgen.config import SizeConfig
    from mmmgen.model.sizing import format_size_report, size_report

    (config,), _ = parse_config(
        argv, [SizeConfig], "mmmgen size",
        "Count a dataset's tokens; print the Chinchilla compute-optimal model size, steps and the preset that fits.",
    )
    print(format_size_report(size_report(config.dataset, config.tokens_per_param, config.epochs, config.batch_tokens)))
    return 0


def cmd_train(argv: Sequence[str]) -> int:
    import os

    from mmmgen.config import TrainConfig
    from mmmgen.model.train import format_summary, train

    (config,), _ = parse_config(
        argv, [TrainConfig], "mmmgen train",
        "Train a GPT-2 from scratch on a prepared dataset (HF Trainer; no compute on padding, see --batching; checkpoints; --resume), "
        "or fine-tune a trained one with --init-from (default: the shipped model).",
    )
    run = train(config)
    if int(os.environ.get("RANK", "0")) == 0:
        print(format_summary(run))
    return 0


def cmd_sweep(argv: Sequence[str]) -> int:
    import argparse

    from transformers import HfArgumentParser

    from mmmgen.config import SweepConfig, TrainConfig
    from mmmgen.model.sweep import format_summary, load_sweep, run_sweep

    parser = HfArgumentParser(
        [SweepConfig, TrainConfig], prog="mmmgen sweep",
        description="Search training settings with a W&B sweep YAML, offline (Optuna) and resumable; "
        "every `mmmgen train` flag given here is held fixed and wins over the file.",
    )
    parser.add_argument("sweep_file", help="W&B sweep YAML: method, metric, parameters; fixed settings under train:.")
    tidy_help(parser)
    train_names = [f.name for f in dataclasses.fields(TrainConfig)]
    for action in parser._actions:  # only the training flags actually given reach the namespace
        if action.dest in train_names:
            action.default = argparse.SUPPRESS
    ns = vars(parser.parse_args(argv))
    fixed = {k: ns.pop(k) for k in train_names if k in ns}
    try:
        config = SweepConfig(**{f.name: ns[f.name] for f in dataclasses.fields(SweepConfig)})
    except ValueError as exc:
        parser.error(str(exc))
    result = run_sweep(load_sweep(ns["sweep_file"], fixed), config)
    print(format_summary(result))
    return 0 if result.best is not None or config.backend == "wandb" else 1


def cmd_evaluate(argv: Sequence[str]) -> int:
    from mmmgen.config import EvaluateConfig
    from mmmgen.model.evaluate import evaluate, format_table

    (c,), _ = parse_config(
        argv, [EvaluateConfig], "mmmgen evaluate",
        "Score a trained model: loss per token and per note on held-out windows (--dataset test split or --midi folder), "
        "validity of generated tracks, and musical statistics against the reference (overlapping areas, Yang & Lerch 2018).",
    )
    results = evaluate(c)
    print(format_table(results))
    if c.out:
        print(f"results written to {c.out}")
    if c.write_card:
        print(f"model card updated: {Path(results['model']) / 'README.md'} (and evaluation.json)")
    return 0


def cmd_app(argv: Sequence[str]) -> int:
    from mmmgen.app import AppSettings, build_app, serve
    from mmmgen.config import AppConfig
    from mmmgen.model.run import find_run, generator_from_run

    (c,), _ = parse_config(argv, [AppConfig], "mmmgen app", "Start the web app (Gradio) on a trained model.")
    apply_threads(say=log.info)
    run = find_run(c.model)
    generator, settings = generator_from_run(run)
    codec = settings.get("codec", {})
    app_settings = AppSettings(
        bars=codec.get("bars", 8), grid=codec.get("grid", 12), density_levels=codec.get("density_levels", 10),
        density_edges=settings.get("density_edges", []), genres=generator.genres, concurrency=c.concurrency, queue_size=c.queue_size,
        cache_minutes=c.cache_minutes, load=c.load,
    )
    demo = build_app(generator, app_settings)  # a bad --load fails here, before serving
    print(f"model: {run}\n" + (f"piece: {c.load}\n" if c.load else "") + f"open http://{c.host}:{c.port}/ in a browser (Ctrl+C stops)")
    serve(demo, c.host, c.port, block=True)
    return 0


def cmd_space(argv: Sequence[str]) -> int:
    from mmmgen.config import SpaceConfig
    from mmmgen.model.space import export_space

    (c,), ns = parse_config(
        argv, [SpaceConfig], "mmmgen space",
        "Write a folder that runs as a Hugging Face Space (Gradio) or a Docker image: app.py, requirements.txt, "
        "packages.txt, README.md (front matter + model card), Dockerfile, the model and mmmgen's source.",
        positionals=[("run", "Run folder of a trained model; default: the model shipped with mmmgen; latest: the newest under runs/."),
                     ("out", "Folder to write (new, empty, or an earlier `mmmgen space` folder, which is replaced).")],
    )
    out = export_space(ns["run"], ns["out"], c)
    print(f"Space written to {out}\n  try it:  python {out / 'app.py'}   (then open http://localhost:7860/)\n"
          f"  push it: see {out / 'README.md'} (hf upload USER/SPACE {out} . --repo-type space)")
    return 0
