"""Copy a trained run's final model into the package (``make model`` calls this).

    python scripts/ship_model.py RUN [DEST]   # DEST default: src/mmmgen/resources/default_model
"""

import sys
from pathlib import Path

from mmmgen.model.run import ship_run

if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    dest = Path(sys.argv[2]) if len(sys.argv) == 3 else Path(__file__).resolve().parents[1] / "src/mmmgen/resources/default_model"
    notes = Path(__file__).resolve().parents[1] / "docs/default-model/how-it-was-made.md"
    if notes.is_file():  # the recipe, in the shipped card
        from mmmgen.model.evaluate import put_section

        put_section(Path(sys.argv[1]) / "README.md", "How it was made", notes.read_text())
    out = ship_run(sys.argv[1], dest)
    print(f"shipped {sys.argv[1]} -> {out} ({sum(p.stat().st_size for p in out.iterdir()) / 1e6:.1f} MB)")
