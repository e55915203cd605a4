"""Put the training data's collections, licences and attribution into a run's model card.

    python scripts/data_card.py CORPUS_DIR RUN     # CORPUS_DIR: mmmgen corpus output (sources.json)

Also puts RUN/collections.md (scripts/eval_collections.py) into the card. Only collections whose
genre the run was trained on are credited (its ``mmmgen.json`` genre
labels); a collection whose licence binds the weights (NOTTINGHAM, GPL-3.0) is flagged.
"""

import json
import sys
from pathlib import Path

from mmmgen.data.open_corpora import data_card
from mmmgen.model.evaluate import put_section

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    run = Path(sys.argv[2])
    settings = json.loads((run / "mmmgen.json").read_text())
    stats = json.loads((run / "data_stats.json").read_text()) if (run / "data_stats.json").is_file() else {}
    body = data_card(sys.argv[1], settings.get("genre_labels"))
    mix = stats.get("train", {}).get("mix")
    if mix:
        body += "\n\nMix (training windows per epoch, `--mix`): " + ", ".join(f"{g} {m['windows']:,} -> {m['selected']:,}" for g, m in mix.items())
    put_section(run / "README.md", "Training data and licences", body)
    table = run / "collections.md"  # scripts/eval_collections.py --out RUN/collections.json (make model)
    if table.is_file():
        put_section(run / "README.md", "Held-out bits per note per collection", table.read_text().split("\n", 2)[2])
    print(f"model card updated: {run / 'README.md'}")
