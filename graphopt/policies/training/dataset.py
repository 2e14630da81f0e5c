"""The policy dataset: every evaluation a collection run made, as Parquet (pyarrow).

A dataset is a folder with one file per graph (``<graph_id>.parquet``): workers on several
machines write their own files, a stopped collection resumes by skipping graphs already there,
and ``read`` loads the folder as one table. One row per evaluated pool entry:

| column | type | what |
| --- | --- | --- |
| graph_id | string | the corpus entry: architecture, configuration, exporter, axes, seed (they determine the graph) |
| fingerprint | string | the exported graph's fingerprint (Format.fingerprint: equal when computing the same way) |
| arch | string | architecture family (bert, llama, ...); held-out families never train |
| spec | string | the corpus entry as JSON (depth, width, heads, batch, sequence, exporter...) |
| target | string | the target the graph was judged on (its name: ort-cpu, ...) |
| entry | string | the pool entry's label; ``kind``, ``family``, ``site_class`` say what it is |
| position | int32 | the entry's place in the pool (0 is greedy) |
| features | list<float32> | ``graphopt/policies/features.py``, in the order of the file's ``feature_names`` metadata |
| sites | list<struct> | the sites the rewrite applied: rule, signature, anchor, fused_now (in the original's report) |
| kernels, fused, fired | int32, string (JSON) | the target's fusion report of the candidate |
| equivalent | bool | null when it was not verified (refused, or nothing gained) |
| rejected | string | why it cannot be kept ("" when accepted) |
| ratio, ci_low, ci_high | float64 | candidate time / original time, with the 95% interval; null when not timed |
| rounds | int32 | interleaved rounds behind the ratio |
| baseline_ms, candidate_ms | float64 | median times |
| seconds | float64 | what evaluating this entry cost (rewrite, compile, verify, time) |
| machine, versions | string (JSON) | host, cores, CPU; onnxruntime, onnx, onnx_ir, graphopt, python |

``label_ratio`` is what training and evaluation read: the ratio when the entry was accepted,
else 1.0 (the original is kept: no gain, no loss).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from graphopt.core.atomic import atomic_path

SITE = pa.struct(
    [("rule", pa.string()), ("signature", pa.string()), ("anchor", pa.string()), ("fused_now", pa.bool_())]
)
SCHEMA = pa.schema(
    [
        ("graph_id", pa.string()),
        ("fingerprint", pa.string()),
        ("arch", pa.string()),
        ("spec", pa.string()),
        ("target", pa.string()),
        ("entry", pa.string()),
        ("kind", pa.string()),
        ("family", pa.string()),
        ("site_class", pa.string()),
        ("position", pa.int32()),
        ("features", pa.list_(pa.float32())),
        ("sites", pa.list_(SITE)),
        ("kernels", pa.int32()),
        ("fused", pa.string()),
        ("fired", pa.string()),
        ("equivalent", pa.bool_()),
        ("rejected", pa.string()),
        ("ratio", pa.float64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
        ("rounds", pa.int32()),
        ("baseline_ms", pa.float64()),
        ("candidate_ms", pa.float64()),
        ("seconds", pa.float64()),
        ("machine", pa.string()),
        ("versions", pa.string()),
    ]
)


def write_graph(folder, graph_id: str, rows: list[dict], feature_names: list[str], schema_digest: str) -> Path:
    """One graph's rows as ``<folder>/<graph_id>.parquet``, written atomically."""
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    metadata = {b"feature_names": json.dumps(feature_names).encode(), b"feature_schema": schema_digest.encode()}
    table = table.replace_schema_metadata(metadata)
    path = Path(folder) / f"{graph_id}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def done(folder) -> set[str]:
    """Graph ids already collected in ``folder``."""
    return {p.stem for p in Path(folder).glob("*.parquet")}


def read(folder) -> tuple[pa.Table, list[str], str]:
    """The whole dataset: (table, feature names, feature schema digest). Files collected with
    another feature schema are refused: mixing them would misalign the feature columns."""
    files = sorted(Path(folder).glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no dataset files (*.parquet) in {folder}")
    tables, names, digest = [], None, None
    for path in files:
        table = pq.read_table(path)
        meta = table.schema.metadata or {}
        file_digest = meta.get(b"feature_schema", b"").decode()
        if digest is not None and file_digest != digest:
            raise ValueError(f"{path.name} was collected with feature schema {file_digest}, the others with {digest}")
        digest, names = file_digest, json.loads(meta[b"feature_names"])
        tables.append(table.replace_schema_metadata(None))
    return pa.concat_tables(tables), names, digest


def target_of(table: pa.Table) -> str:
    """The target a dataset was collected for (one per dataset)."""
    targets = set(table.column("target").to_pylist())
    if len(targets) != 1:
        raise ValueError(
            f"a dataset holds one target's evaluations; this one holds {', '.join(sorted(map(str, targets)))}"
        )
    return targets.pop()


def label_ratio(row: dict) -> float:
    """The ratio the pool entry gives when a run keeps it: its timing when accepted, else 1.0."""
    ratio = row.get("ratio")
    return ratio if ratio is not None and not row.get("rejected") else 1.0
