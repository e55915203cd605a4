"""Held-out bits per note per collection, one column per model, on the same songs (issue 28's table).

    python scripts/eval_collections.py --model default --model runs/default \
        --corpus data/corpus --corpus data/eval-corpus --midi ../shared/midi-styles \
        --out benchmarks/results/collections.json          # + collections.md beside it

``--corpus``: folders of ``mmmgen corpus`` (their held-out files: the split ``mmmgen prepare``
makes of that folder, same --test-size and --seed); ``--midi``: folders of unseen MIDI, by
sub-folder. See ``mmmgen.model.collections_eval``.
"""

import argparse
import logging
import sys
from pathlib import Path

from mmmgen.model.collections_eval import (
    evaluate_collections,
    format_collections,
    heldout_sets,
    write_results,
)

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", required=True, help="A run folder or 'default' (repeat: one column each).")
    p.add_argument("--corpus", action="append", default=[], help="A corpus folder with genres.csv (repeatable).")
    p.add_argument("--midi", action="append", default=[], help="A folder of unseen MIDI, one collection per sub-folder (repeatable).")
    p.add_argument("--test-size", type=float, default=0.1, help="As given to mmmgen prepare.")
    p.add_argument("--seed", type=int, default=42, help="As given to mmmgen prepare.")
    p.add_argument("--max-windows", type=int, default=300, help="Windows per collection, spread over its held-out files.")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--out", default=None, help="JSON results (and the .md table beside it).")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sets = heldout_sets(a.corpus, a.midi, a.test_size, a.seed)
    results = evaluate_collections(a.model, sets, a.max_windows, a.batch_size)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from _env import environment  # hardware, load, versions, commit: beside the numbers

    results["environment"] = environment(("torch", "transformers", "symusic", "music21"))
    results["command"] = " ".join(sys.argv)
    print(format_collections(results))
    if a.out:
        print("written: " + ", ".join(map(str, write_results(results, a.out))))
