"""``llmcompare cache info`` and ``cache clear``: the response cache."""

from __future__ import annotations

import click

from llmcompare.cli._common import _fail
from llmcompare.errors import ConfigurationError


@click.group("cache")
def cache_group() -> None:
    """Show or empty the response cache (set LLMCOMPARE_CACHE_DIR to move it)."""


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value = n / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


@cache_group.command("info")
def cache_info_cmd() -> None:
    """Show the cache file, its size and its answers per model."""
    from llmcompare.runs import ResponseCache

    try:
        with ResponseCache() as cache:
            info = cache.info()
    except ConfigurationError as exc:
        _fail(exc.message)
    click.echo(f"path     {info.path}")
    click.echo(f"entries  {info.entries}")
    click.echo(f"size     {_size(info.size_bytes)}")
    width = max((len(m) for m in info.by_model), default=0)
    for model, count in info.by_model.items():
        click.echo(f"  {model:<{width}}  {count}")


@cache_group.command("clear")
@click.option("-m", "--model", help="Delete only this model's answers (its id, provider:name).")
def cache_clear_cmd(model: str | None) -> None:
    """Delete cached answers: all of them, or one model's."""
    from llmcompare.runs import ResponseCache

    try:
        with ResponseCache() as cache:
            deleted = cache.clear(model)
    except ConfigurationError as exc:
        _fail(exc.message)
    which = f" of {model}" if model else ""
    plural = "" if deleted == 1 else "s"
    click.echo(f"deleted {deleted} cached answer{plural}{which} from {cache.path}")
