"""Copy a trained run's final model into the package (``make model`` calls this).

    python scripts/ship_model.py RUN [DEST] [--keep-previous v1]

DEST default: src/mmmgen/resources/default_model. ``--keep-previous NAME`` first moves the model
shipped there to ``default_model_NAME`` (loadable as ``--model default-NAME``), so the new default can
be compared with it; in git that is a rename of the same files (no second copy of the weights in the
history), though an installed package then holds both.
"""

import argparse
import shutil
from pathlib import Path

from mmmgen.model.run import ship_run

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run")
    p.add_argument("dest", nargs="?", default=str(ROOT / "src/mmmgen/resources/default_model"))
    p.add_argument("--keep-previous", default=None, help="Keep the model shipped now as default_model_NAME (e.g. v1).")
    a = p.parse_args()
    dest = Path(a.dest)
    if a.keep_previous and (dest / "config.json").is_file():
        kept = dest.with_name(f"{dest.name}_{a.keep_previous}")
        if kept.exists():  # a second `make model` must not put the model it replaces over the one kept
            msg = f"{kept} already holds a kept model; choose another --keep-previous name or remove it"
            raise SystemExit(msg)
        shutil.move(str(dest), kept)
        print(f"kept the previous model as {kept} (--model default-{a.keep_previous})")
    notes = ROOT / "docs/default-model/how-it-was-made.md"
    if notes.is_file():  # the recipe, in the shipped card
        from mmmgen.model.evaluate import put_section

        put_section(Path(a.run) / "README.md", "How it was made", notes.read_text())
    out = ship_run(a.run, dest)
    print(f"shipped {a.run} -> {out} ({sum(p.stat().st_size for p in out.iterdir()) / 1e6:.1f} MB)")
