"""Spooled window parts become ``prepare``'s dataset folder, without ``datasets``.

``prepare``'s first pass leaves each chunk of files' windows in spool files (one ``marshal``'d
list of records ``(source, start_bar, ts, transpose, parts)`` per chunk and split). Once the
density edges are known, ``write_shards`` turns a run of consecutive spool files into final rows
and writes them as Arrow IPC stream shards (in a worker process, one run each, as
``save_to_disk(num_proc=N)`` writes N shards), and ``finish_split`` names the shards
``data-0000i-of-0000n.arrow`` beside ``dataset_info.json`` and ``state.json``: the layout of
``DatasetDict.save_to_disk``, features in the schema metadata as ``datasets`` writes them.
``datasets.load_from_disk`` reads it; importing ``datasets`` would cost more start-up time than
a small corpus takes to encode.
"""

from __future__ import annotations

import json
import marshal
import random
import secrets
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np

from mmmgen.text import vocab as V
from mmmgen.text.encode import parts_to_text

FEATURES = {  # column -> dtype (datasets' Value names, which are pyarrow's type names)
    "text": "string",
    "source": "string",
    "start_bar": "int32",
    "genre": "string",
    "transpose": "int8",
    "n_notes": "int32",
    "n_words": "int32",
    "infill": "bool",
}
BATCH_ROWS = 4096  # rows per Arrow record batch at most: bounded memory, few Python-to-Arrow calls
BATCH_TEXT = 2**28  # and at most this many characters of text per batch (int32 string offsets)
SHARD_BYTES = 500e6  # a new Arrow shard past this size, as save_to_disk's default


@lru_cache(maxsize=1)
def _features() -> tuple[dict, object]:
    """The ``datasets`` features and the Arrow schema that carries them."""
    import pyarrow as pa

    features = {name: {"dtype": dtype, "_type": "Value"} for name, dtype in FEATURES.items()}
    meta = {"huggingface": json.dumps({"info": {"features": features}})}
    return features, pa.schema([(name, pa.type_for_alias(dtype)) for name, dtype in FEATURES.items()], metadata=meta)


def read_spool(paths: Iterable[Path]):
    """The records of spool files, in order (each file holds one ``marshal``'d list of records)."""
    for path in paths:
        yield from marshal.loads(path.read_bytes())  # loads, not load: that reads the file object by object


def spool_rows(records: Iterable, labels: dict[str, str], edges: list[float], infill_prob: float, seed: int,
               kit_subsets: float = 0.0, grid: int = 12, counts: Counter | None = None, octave_copies: float = 0.0):
    """Final dataset rows of spool records, in order: a window, its bar-fill variant (a share
    ``infill_prob``), its copy on a drum-kit subset (a share ``kit_subsets``, ``text.kit``), its copy
    with a part an octave away (a share ``octave_copies``, ``text.octave``); the copies counted in
    ``counts``."""
    from mmmgen.text.fill import random_fill
    from mmmgen.text.kit import kit_subset
    from mmmgen.text.octave import octave_copy

    copies = [c for c in (  # (counted as, seeded as, share, parts -> copy or None)
        ("kit_subsets", "kit", kit_subsets, lambda parts, rng: kit_subset(parts, rng, grid)),
        ("octave_copies", "octave", octave_copies, octave_copy),
    ) if c[2]]
    for source, start_bar, ts, transpose, parts in records:
        genre = labels.get(source, V.OTHER_GENRE)
        text = parts_to_text(tuple(ts), genre, parts, edges)
        row = (text, source, start_bar, genre, transpose, sum(n for _, n, _ in parts), text.count(" ") + 1, False)
        yield row
        if infill_prob:
            rng = random.Random(f"{seed}:{source}:{start_bar}:{transpose}")  # stable per window
            if rng.random() < infill_prob:
                masked = random_fill(text, rng)  # a new string: the plain row above is untouched
                yield (masked, *row[1:6], masked.count(" ") + 1, True)
        for name, prefix, share, make in copies:
            rng = random.Random(f"{prefix}:{seed}:{source}:{start_bar}:{transpose}")  # stable per window and kind
            changed = make(parts, rng) if rng.random() < share else None
            if changed:
                if counts is not None:
                    counts[name] += 1
                text = parts_to_text(tuple(ts), genre, changed, edges)
                yield (text, *row[1:5], sum(n for _, n, _ in changed), text.count(" ") + 1, False)


def _arrow_array(values, type_):
    """A pyarrow array of Python strings, ints or bools, built from its buffers: ``pa.array``
    would import pandas (half a second) to ask whether the values are pandas objects."""
    import pyarrow as pa

    n = len(values)
    if pa.types.is_string(type_):
        encoded = [v.encode() for v in values]
        offsets = np.zeros(n + 1, np.int32)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    elif pa.types.is_boolean(type_):
        buffers = [None, pa.py_buffer(np.packbits(np.asarray(values, bool), bitorder="little"))]
    else:
        buffers = [None, pa.py_buffer(np.asarray(values, type_.to_pandas_dtype()))]
    array = pa.Array.from_buffers(type_, n, buffers)
    array.validate()
    return array


def _record_batch(rows: list[tuple]):
    import pyarrow as pa

    schema = _features()[1]
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in FEATURES]
    return pa.RecordBatch.from_arrays([_arrow_array(c, f.type) for c, f in zip(columns, schema, strict=True)], schema=schema)


def write_shards(spools: list[Path], shard: Path, labels: dict[str, str], edges: list[float], infill_prob: float = 0.0, seed: int = 0,
                 kit_subsets: float = 0.0, grid: int = 12, octave_copies: float = 0.0) -> tuple[list[Path], Counter]:
    """The final rows of spool files, in order, as Arrow IPC stream shards ``shard.0``, ``shard.1``,
    ... (a new one past ``SHARD_BYTES``; at least one), in record batches of at most
    ``BATCH_ROWS`` rows and about ``BATCH_TEXT`` characters. Runs in a worker process, one part
    of a split each; returns the shards and the counts for the report."""
    import pyarrow as pa

    schema = _features()[1]
    shards: list[Path] = []
    stats: Counter = Counter(windows=0, tokens=0, infill=0, kit_subsets=0, octave_copies=0, bytes=0)
    stats["genres"] = Counter()
    writer = sink = None
    size = 0

    def write(rows: list[tuple]) -> None:
        nonlocal writer, sink, size
        if writer is None or size >= SHARD_BYTES:
            if writer is not None:
                writer.close()
                sink.close()
            shards.append(shard.with_name(f"{shard.name}.{len(shards)}"))
            sink = pa.OSFile(str(shards[-1]), "wb")
            writer, size = pa.ipc.new_stream(sink, schema), 0
        record = _record_batch(rows)
        writer.write_batch(record)
        size += record.nbytes
        stats["bytes"] += record.nbytes
        stats["windows"] += len(rows)
        stats["tokens"] += sum(r[6] for r in rows)
        stats["infill"] += sum(r[7] for r in rows)
        stats["genres"].update(r[3] for r in rows)

    batch, text_chars = [], 0
    for row in spool_rows(read_spool(spools), labels, edges, infill_prob, seed, kit_subsets, grid, stats, octave_copies):
        batch.append(row)
        text_chars += len(row[0])
        if len(batch) >= BATCH_ROWS or text_chars >= BATCH_TEXT:
            write(batch)
            batch, text_chars = [], 0
    if batch or not shards:
        write(batch)
    writer.close()
    sink.close()
    return shards, stats


def finish_split(split_dir: Path, shards: list[Path], stats: dict, split: str) -> None:
    """Name the shards of a split (in order) as ``save_to_disk`` does, beside its ``dataset_info.json``
    and ``state.json``."""
    features = _features()[0]
    names = [f"data-{i:05d}-of-{len(shards):05d}.arrow" for i in range(len(shards))]
    for shard, name in zip(shards, names, strict=True):
        shard.rename(split_dir / name)
    info = {
        "citation": "", "description": "", "homepage": "", "license": "", "features": features,
        "splits": {split: {"name": split, "num_bytes": stats["bytes"], "num_examples": stats["windows"]}},
    }  # fmt: skip
    state_json = {
        "_data_files": [{"filename": name} for name in names],
        "_fingerprint": secrets.token_hex(8),  # random, as datasets does for data it cannot hash
        "_format_columns": None,
        "_format_kwargs": {},
        "_format_type": None,
        "_output_all_columns": False,
        "_split": split,
    }
    (split_dir / "dataset_info.json").write_text(json.dumps(info, indent=2))
    (split_dir / "state.json").write_text(json.dumps(state_json, indent=2))


def new_words(dataset_dir: Path, known: set[str]) -> list[str]:
    """Words of the dataset written at ``dataset_dir`` not in ``known``, read from its Arrow files."""
    import pyarrow as pa

    if not known:
        return []
    words = set()
    for shard in sorted(dataset_dir.glob("*/data-*.arrow")):
        with pa.memory_map(str(shard)) as source:
            for text in pa.ipc.open_stream(source).read_all().column("text").to_pylist():
                words.update(text.split())
    return sorted(words - known)
