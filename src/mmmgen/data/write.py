"""Spooled window parts become ``prepare``'s dataset folder, without ``datasets``.

``prepare``'s first pass leaves each split's windows in a spool file: ``marshal``'d lists of
records ``(source, start_bar, ts, transpose, parts)``, one list per chunk of files. Once the
density edges are known, ``spool_batches`` turns a stretch of a spool into Arrow record batches of
final rows (in worker processes, stretch by stretch, so this scales with ``--num-proc`` too), and
``write_split`` streams the batches, in spool order, into the folder layout of
``DatasetDict.save_to_disk``: Arrow IPC stream shards ``data-0000i-of-0000n.arrow`` with the
features in the schema metadata (as ``datasets`` writes them), ``dataset_info.json`` and
``state.json``. ``datasets.load_from_disk`` reads it; importing ``datasets`` would cost more
start-up time than a small corpus takes to encode.
"""

from __future__ import annotations

import io
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


def read_spool(path: Path, offset: int = 0, length: int | None = None):
    """The records of a stretch of a spool file (all of it by default), in order."""
    with open(path, "rb") as f:
        f.seek(offset)
        data = io.BytesIO(f.read(length if length is not None else -1))
    while True:
        try:
            yield from marshal.load(data)  # a chunk's records
        except EOFError:
            return


def spool_rows(records: Iterable, labels: dict[str, str], edges: list[float], infill_prob: float, seed: int):
    """Final dataset rows of spool records, in order (a bar-fill variant after its window)."""
    from mmmgen.text.fill import random_fill

    for source, start_bar, ts, transpose, parts in records:
        genre = labels.get(source, V.OTHER_GENRE)
        text = parts_to_text(tuple(ts), genre, parts, edges)
        row = (text, source, start_bar, genre, transpose, sum(n for _, n, _ in parts), text.count(" ") + 1, False)
        yield row
        if not infill_prob:
            continue
        rng = random.Random(f"{seed}:{source}:{start_bar}:{transpose}")  # stable per window
        if rng.random() < infill_prob:
            masked = random_fill(text, rng)  # a new string: the plain row above is untouched
            yield (masked, *row[1:6], masked.count(" ") + 1, True)


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


def spool_batches(path: Path, offset: int, length: int, labels: dict[str, str], edges: list[float], infill_prob: float = 0.0, seed: int = 0) -> list[tuple[bytes, dict]]:
    """A stretch of a spool as final rows in Arrow record batches of at most ``BATCH_ROWS`` rows
    and about ``BATCH_TEXT`` characters: each IPC-serialized (to cross processes as bytes), with
    its counts for the report."""
    out, batch, text_chars = [], [], 0
    for row in spool_rows(read_spool(path, offset, length), labels, edges, infill_prob, seed):
        batch.append(row)
        text_chars += len(row[0])
        if len(batch) >= BATCH_ROWS or text_chars >= BATCH_TEXT:
            out.append(_serialized(batch))
            batch, text_chars = [], 0
    if batch:
        out.append(_serialized(batch))
    return out


def _serialized(rows: list[tuple]) -> tuple[bytes, dict]:
    counts = {"windows": len(rows), "tokens": sum(r[6] for r in rows), "infill": sum(r[7] for r in rows), "genres": Counter(r[3] for r in rows)}
    return _record_batch(rows).serialize().to_pybytes(), counts


def write_split(batches: Iterable[tuple[bytes, dict]], split_dir: Path, split: str) -> dict:
    """Stream serialized record batches (``spool_batches``) into ``split_dir`` as ``save_to_disk``
    lays out one split. Returns the split's counts for the report."""
    import pyarrow as pa

    features, schema = _features()
    stats = {"windows": 0, "tokens": 0, "infill": 0, "genres": Counter(), "bytes": 0}
    split_dir.mkdir(parents=True)
    shards: list[Path] = []
    state = {"writer": None, "sink": None, "bytes": 0}

    def close() -> None:
        if state["writer"] is not None:
            state["writer"].close()
            state["sink"].close()

    def write(record, counts: dict) -> None:
        if state["writer"] is None or state["bytes"] >= SHARD_BYTES:  # >= 1 shard: an empty split stays loadable
            close()
            shards.append(split_dir / f"shard-{len(shards)}.arrow")
            state["sink"] = pa.OSFile(str(shards[-1]), "wb")
            state["writer"], state["bytes"] = pa.ipc.new_stream(state["sink"], schema), 0
        state["writer"].write_batch(record)
        state["bytes"] += record.nbytes
        stats["bytes"] += record.nbytes
        for key, value in counts.items():
            stats[key] += value

    for data, counts in batches:
        write(pa.ipc.read_record_batch(pa.py_buffer(data), schema), counts)
    if not shards:
        write(_record_batch([]), {})
    close()
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
    return stats


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
