"""The collectives of an optimised HLO module: kind, how many, bytes moved per device.

Counted statically in the program text: an op inside a loop body (gradient accumulation's scan) is counted
once though it runs once per micro-batch. Bytes are those of each op's result on one device; for the
asynchronous `-start` forms of all-gather and collective-permute, whose result tuple also aliases the
operand, the largest array of the tuple.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

KINDS = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute", "ragged-all-to-all")

_DTYPE_BYTES = {
    "pred": 1,
    "s8": 1,
    "u8": 1,
    "f8e4m3fn": 1,
    "f8e5m2": 1,
    "s16": 2,
    "u16": 2,
    "f16": 2,
    "bf16": 2,
    "s32": 4,
    "u32": 4,
    "f32": 4,
    "s64": 8,
    "u64": 8,
    "f64": 8,
    "c64": 8,
    "c128": 16,
}
_OP = re.compile(
    r"^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*(?P<shape>.*?)\s+(?P<op>"
    + "|".join(re.escape(k) for k in sorted(KINDS, key=len, reverse=True))
    + r")(?P<start>-start)?\("
)
_ARRAY = re.compile(r"\b([a-z]+\d*(?:e\d+m\d+(?:fn)?)?)\[([\d,]*)\]")


def array_bytes(shape_text: str) -> list[int]:
    """Bytes of every array in an HLO shape (`f32[2,3]{1,0}` or a tuple of them)."""
    sizes = []
    for dtype, dims in _ARRAY.findall(shape_text):
        if dtype not in _DTYPE_BYTES:
            continue
        count = 1
        for d in filter(None, dims.split(",")):
            count *= int(d)
        sizes.append(count * _DTYPE_BYTES[dtype])
    return sizes


def collectives(hlo_text: str | Iterable[str]) -> list[dict]:
    """`[{"kind", "count", "bytes"}]` of the module's collectives, one row per kind present."""
    texts = [hlo_text] if isinstance(hlo_text, str) else list(hlo_text)
    rows: dict[str, dict] = {}
    for text in texts:
        for line in text.splitlines():
            match = _OP.match(line)
            if not match:
                continue
            sizes = array_bytes(match["shape"])
            if match["start"] and match["op"] in ("all-gather", "collective-permute"):
                moved = max(sizes, default=0)
            else:
                moved = sum(sizes)
            row = rows.setdefault(match["op"], {"kind": match["op"], "count": 0, "bytes": 0})
            row["count"] += 1
            row["bytes"] += moved
    return [rows[k] for k in KINDS if k in rows]
