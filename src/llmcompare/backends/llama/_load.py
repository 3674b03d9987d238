"""Loading weights for the ``llama`` backend: device, dtype, threads, and the GGUF cache.

Imports torch and transformers; loaded only when a model first needs its weights.

A GGUF file is de-quantized by transformers, which is slow (it parses the file's metadata with
pure Python, ~20 s for the 135M embedded model). The result is saved once as a plain
safetensors folder in the user cache directory, keyed by the file's SHA-256, the transformers
version and the dtype, so every later process loads the folder in about a second. The folder is
written under a temporary name and renamed into place, so a concurrent process or a crash never
leaves a half-written folder where a complete one is expected.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmcompare.backends._network import check_network
from llmcompare.backends.llama._engine import Engine
from llmcompare.backends.llama._locate import Source, default_cache_dir, file_sha256
from llmcompare.backends.llama._options import LlamaOptions
from llmcompare.backends.llama._products import few_rows, install
from llmcompare.backends.llama._scheduler import Scheduler
from llmcompare.errors import ConfigurationError

__all__ = ["Loaded", "gguf_cache_folder", "load"]

log = logging.getLogger("llmcompare.llama")

_MANIFEST = "llmcompare-gguf.json"
# Partial folders older than this come from a crashed conversion and are removed.
_STALE_PARTIAL_S = 24 * 3600.0

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class Loaded:
    """A loaded model and how it was loaded.

    Attributes:
        engine: The generation engine on the loaded weights.
        scheduler: The scheduler that runs every call's jobs on the engine (its worker thread
            starts with the first job).
        load_s: Seconds the load took (conversion included).
        converted: True when a GGUF was converted by this load (not found in the cache).
        folder: The folder the weights were read from (the cache folder for a GGUF), or
            ``None`` for a hub model.
    """

    engine: Engine
    scheduler: Scheduler
    load_s: float
    converted: bool
    folder: Path | None


def pick_device(requested: str) -> torch.device:
    """The torch device for the ``device`` option.

    Raises:
        ConfigurationError: When the requested accelerator is not available in this torch.
    """
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps is not None and mps.is_available())
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_ok else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigurationError(
            f"device {requested!r} was asked for but this torch build sees no CUDA device "
            f"(torch {torch.__version__}); use device='cpu' or install a CUDA build of torch"
        )
    if requested == "mps" and not mps_ok:
        raise ConfigurationError(
            "device 'mps' was asked for but Apple MPS is not available here; use device='cpu'"
        )
    return torch.device(requested)


def pick_dtype(requested: str, device: torch.device) -> torch.dtype:
    """The weight dtype for the ``dtype`` option on a device."""
    if requested != "auto":
        return _DTYPES[requested]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    # bfloat16 matrix products were slower than float32 on the CPUs measured.
    return torch.float32


def default_threads() -> int | None:
    """The torch thread count to set by default, or ``None`` to leave torch's own.

    On a machine with two usable cores or fewer, one thread: a second thread waits on the first
    at every operation, and on a shared 2-core machine any other busy process made 2 threads
    several times slower than 1. ``OMP_NUM_THREADS`` set by the user is respected.
    """
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    return 1 if usable <= 2 else None


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    # transformers draws progress bars on stderr while loading; a library should not.
    from transformers.utils import logging as tf_logging

    was_enabled = tf_logging.is_progress_bar_enabled()
    tf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if was_enabled:
            tf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def _require_gguf() -> None:
    import importlib.util

    for module in ("gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            raise ImportError(
                f'loading a GGUF file needs the {module!r} package: pip install "llmcompare[llama]"'
            )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:60] or "model"


def gguf_cache_folder(gguf: Path, cache_root: Path, dtype: torch.dtype) -> Path:
    """Where the converted folder of a GGUF file lives (whether it exists yet or not).

    Args:
        gguf: The GGUF file.
        cache_root: The llmcompare cache directory.
        dtype: The dtype the weights are saved in.

    Returns:
        ``<cache_root>/llama/gguf/<name>-<sha256[:16]>-tf<version>-<dtype>``.
    """
    root = cache_root / "llama"
    digest = file_sha256(gguf, root / "sha256")
    dtype_name = str(dtype).removeprefix("torch.")
    name = f"{_slug(gguf.stem)}-{digest[:16]}-tf{transformers.__version__}-{dtype_name}"
    return root / "gguf" / name


def _complete(folder: Path) -> bool:
    return (folder / _MANIFEST).is_file() and (folder / "config.json").is_file()


def _remove_stale_partials(parent: Path) -> None:
    now = time.time()
    for partial in parent.glob(".partial-*"):
        with contextlib.suppress(OSError):
            if now - partial.stat().st_mtime > _STALE_PARTIAL_S:
                shutil.rmtree(partial, ignore_errors=True)


def _convert_gguf(gguf: Path, folder: Path, dtype: torch.dtype) -> None:
    """De-quantize a GGUF file into a plain transformers folder, published atomically."""
    _require_gguf()
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(folder.parent)
    partial = Path(tempfile.mkdtemp(prefix=f".partial-{folder.name}-", dir=folder.parent))
    try:
        log.info("converting %s to safetensors in %s (once)", gguf, folder)
        start = time.perf_counter()
        tokenizer = AutoTokenizer.from_pretrained(
            gguf.parent, gguf_file=gguf.name, local_files_only=True
        )
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=dtype, local_files_only=True
        )
        # transformers refuses to save a model it loaded "quantized with gguf"; the weights are
        # already de-quantized, so dropping the quantization record makes it a plain model.
        quantizer = getattr(model, "hf_quantizer", None)
        if quantizer is not None:
            quantizer.remove_quantization_config(model)
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        manifest = {
            "source": str(gguf),
            "sha256": file_sha256(gguf, folder.parent.parent / "sha256"),
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "dtype": str(dtype),
            "seconds": round(time.perf_counter() - start, 3),
        }
        # The manifest is written last: a folder with it is complete.
        (partial / _MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        del model
        # mkdtemp made it private (0700); the published folder reads like any other.
        partial.chmod(0o755)
        try:
            partial.rename(folder)
        except OSError:
            # Another process published the same conversion first: theirs is as good as ours.
            if not _complete(folder):
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _discard(folder: Path) -> None:
    # Move aside first, so no other process sees a half-deleted folder under the real name.
    trash = folder.with_name(f".partial-trash-{folder.name}-{os.getpid()}")
    with contextlib.suppress(OSError):
        folder.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)


def _from_folder(folder: Path | str, dtype: torch.dtype, options: LlamaOptions, **kw: Any) -> Any:
    tokenizer = AutoTokenizer.from_pretrained(
        folder, trust_remote_code=options.trust_remote_code, **kw
    )
    model = AutoModelForCausalLM.from_pretrained(
        folder, dtype=dtype, trust_remote_code=options.trust_remote_code, **kw
    )
    return model, tokenizer


def _offline() -> bool:
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return env or bool(constants.HF_HUB_OFFLINE)


def _from_hub(model_id: str, hub_id: str, dtype: torch.dtype, options: LlamaOptions) -> Any:
    from huggingface_hub import constants

    try:
        # Already downloaded: no network needed.
        return _from_folder(hub_id, dtype, options, local_files_only=True)
    except OSError:
        pass
    hint = (
        f"pass a local path instead (a transformers folder with config.json, or a .gguf file: "
        f"get_model('llama', model='/path/to/model')), or allow the download of {hub_id!r} "
        "(network on, HF_HUB_OFFLINE unset)"
    )
    if _offline():
        raise ConfigurationError(
            f"llama model {hub_id!r} is not a local path and is not in the Hugging Face cache, "
            f"and the hub is offline (HF_HUB_OFFLINE=1): {hint}"
        )
    check_network(model_id, constants.ENDPOINT)
    try:
        return _from_folder(hub_id, dtype, options)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"llama model {hub_id!r} could not be fetched from the Hugging Face hub "
            f"({type(exc).__name__}: {exc}); {hint}"
        ) from exc


def _convert_or_explain(gguf: Path, folder: Path, dtype: torch.dtype) -> None:
    try:
        _convert_gguf(gguf, folder, dtype)
    except ImportError:
        raise
    except Exception as exc:  # the GGUF readers fail in many ways on a bad file
        raise ConfigurationError(
            f"could not convert the GGUF file {gguf} ({type(exc).__name__}: {exc}); "
            "is it a complete GGUF file of a transformers-supported architecture?"
        ) from exc


def _unloadable(gguf: Path, folder: Path, exc: BaseException) -> ConfigurationError:
    return ConfigurationError(
        f"the converted copy of {gguf} in {folder} cannot be loaded "
        f"({type(exc).__name__}: {exc}); delete that folder (it is only a cache: the next load "
        "converts the GGUF file again) and check that its disk has room; if a fresh conversion "
        f"fails the same way, transformers {transformers.__version__} cannot load this model"
    )


def load(model_id: str, source: Source, options: LlamaOptions) -> Loaded:
    """Load the weights and tokenizer of a source and build its engine.

    Args:
        model_id: The llmcompare id, for errors.
        source: Where the weights come from.
        options: The model's options.

    Returns:
        The engine, its scheduler and facts about the load.

    Raises:
        ConfigurationError: For an unavailable device, an offline hub id, a broken file, or a
            converted GGUF copy that cannot be loaded (the message names the folder to delete).
        ImportError: When loading a GGUF file and ``gguf`` or ``accelerate`` is missing.
    """
    start = time.perf_counter()
    device = pick_device(options.device)
    dtype = pick_dtype(options.dtype, device)
    threads = options.num_threads or (default_threads() if device.type == "cpu" else None)
    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    converted = False
    folder: Path | None = None
    with _quiet_progress():
        if source.kind == "gguf":
            gguf = Path(source.location)
            cache_root = options.cache_dir or default_cache_dir()
            folder = gguf_cache_folder(gguf, cache_root, dtype)
            if not _complete(folder):
                _convert_or_explain(gguf, folder, dtype)
                converted = True
            try:
                model, tokenizer = _from_folder(folder, dtype, options, local_files_only=True)
            except ImportError:
                raise
            # Any error: a damaged safetensors file raises safetensors' own SafetensorError,
            # which is none of OSError, ValueError or RuntimeError.
            except Exception as exc:  # each way is explained or retried below
                if converted:
                    raise _unloadable(gguf, folder, exc) from exc
                # A damaged cache entry (disk full, edited by hand): convert again, once.
                log.warning(
                    "cached conversion %s is unreadable (%s); converting again", folder, exc
                )
                _discard(folder)
                _convert_or_explain(gguf, folder, dtype)
                converted = True
                try:
                    model, tokenizer = _from_folder(folder, dtype, options, local_files_only=True)
                except ImportError:
                    raise
                except Exception as again:
                    raise _unloadable(gguf, folder, again) from again
        elif source.kind == "folder":
            folder = Path(source.location)
            try:
                model, tokenizer = _from_folder(folder, dtype, options, local_files_only=True)
            except (OSError, ValueError) as exc:
                raise ConfigurationError(
                    f"could not load the transformers folder {folder} ({type(exc).__name__}: {exc})"
                ) from exc
        else:
            model, tokenizer = _from_hub(model_id, source.location, dtype, options)
    model.to(device)
    model.eval()
    if device.type == "cpu":
        install(model, few_rows(model, options.cache_dir or default_cache_dir()))
    engine = Engine(
        model_id,
        model,
        tokenizer,
        max_batch_size=options.max_batch_size,
        max_batch_tokens=options.max_batch_tokens,
        response_model=source.label,
        prefix_cache_tokens=options.prefix_cache_tokens,
    )
    return Loaded(engine, Scheduler(engine), time.perf_counter() - start, converted, folder)
