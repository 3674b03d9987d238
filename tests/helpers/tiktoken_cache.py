"""tiktoken's cl100k_base and o200k_base tables, offline, from the quicktok-v1 wheel's data."""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

__all__ = ["seed_tiktoken_cache"]


def seed_tiktoken_cache(cache: Path) -> bool:
    """Write cl100k_base / o200k_base into a tiktoken cache from the quicktok-v1 wheel's tables."""
    import base64
    import hashlib
    import struct

    spec = importlib.util.find_spec("quicktok")
    if spec is None or not spec.submodule_search_locations:
        return False
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    import tiktoken_ext.openai_public as public  # type: ignore[import-untyped]

    source = inspect.getsource(public)
    for ours, theirs in (("cl100k", "cl100k_base"), ("o200k", "o200k_base")):
        url = re.search(rf'"(https://[^"]+/{theirs}\.tiktoken)"', source)
        assert url is not None
        raw = (data / f"{ours}.vocab").read_bytes()
        (count,) = struct.unpack_from("<I", raw, 0)
        pos, lines = 4, []
        for _ in range(count):
            (size,) = struct.unpack_from("<H", raw, pos)
            token = raw[pos + 2 : pos + 2 + size]
            (rank,) = struct.unpack_from("<I", raw, pos + 2 + size)
            pos += 6 + size
            lines.append(base64.b64encode(token) + b" " + str(rank).encode() + b"\n")
        name = hashlib.sha1(url.group(1).encode()).hexdigest()  # tiktoken's file naming
        (cache / name).write_bytes(b"".join(lines))
    return True
