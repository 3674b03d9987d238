"""What decides a local model's answers, for the response cache's keys.

The weights are named by content, not by path: the same GGUF file anywhere has the same
identity, and an edited one a new identity. Hashing runs once per file (the GGUF digest is the
one the GGUF cache already keeps) or costs only a directory listing (a folder's big files).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from llmcompare.backends.llama._locate import Source, file_sha256

__all__ = ["chat_template_digest", "weights_digest"]

# Files up to this size are hashed by content (configs, tokenizers); bigger ones (weights) by
# name, size and modification time, so a folder of many gigabytes costs a listing, not a read.
_SMALL_FILE = 1 << 20

# Documentation in a model folder does not change its answers.
_NOT_MODEL = (".md", ".rst")


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(folder.iterdir()):
        name = file.name
        if name.startswith(".") or name.lower().endswith(_NOT_MODEL) or not file.is_file():
            continue
        if name.upper().startswith("LICENSE"):
            continue
        stat = file.stat()
        if stat.st_size <= _SMALL_FILE:
            fact = "sha256:" + hashlib.sha256(file.read_bytes()).hexdigest()
        else:
            fact = f"size:{stat.st_size}|mtime_ns:{stat.st_mtime_ns}"
        digest.update(f"{name}|{fact}\n".encode())
    return digest.hexdigest()


def _hub_revision(hub_id: str) -> str | None:
    """The commit of a hub model in the local hub cache (its snapshot folder), if there."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        return None
    found = try_to_load_from_cache(hub_id, "config.json")
    # snapshots/<commit>/config.json; anything else (None, the "known missing" marker) is unknown.
    return Path(found).parent.name if isinstance(found, str) else None


def weights_digest(source: Source, cache_root: Path) -> str:
    """A name for the weights of a source that changes when they do.

    Args:
        source: Where the weights come from.
        cache_root: The llmcompare cache directory (where the GGUF digests are remembered).

    Returns:
        For a GGUF file, its SHA-256 (remembered as the GGUF cache does); for a folder, the
        SHA-256 of its files' contents (small files) and names, sizes and modification times
        (big ones); for a hub id, ``"<id>@<commit>"`` (the commit in the local hub cache;
        ``"<id>@unknown"`` when it is not there).
    """
    if source.kind == "gguf":
        return file_sha256(Path(source.location), cache_root / "llama" / "sha256")
    if source.kind == "folder":
        return _folder_digest(Path(source.location))
    return f"{source.location}@{_hub_revision(source.location) or 'unknown'}"


def chat_template_digest(tokenizer: Any) -> str | None:
    """The SHA-256 of a tokenizer's chat template, or ``None`` when it has none."""
    template = getattr(tokenizer, "chat_template", None)
    if template is None:
        return None
    text = (
        template
        if isinstance(template, str)
        else json.dumps(template, sort_keys=True, ensure_ascii=False, default=str)
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
