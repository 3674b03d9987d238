"""Token prices: the table shipped as package data, prices users register, and the lookup."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from llmcompare.errors import ConfigurationError

__all__ = [
    "TIERS",
    "Price",
    "PriceMatch",
    "TierPrice",
    "add_price_source",
    "get_price",
    "load_prices",
    "match_price",
    "oldest_price_date",
    "prices",
    "register_price",
    "reset_prices",
]

_PER_MILLION = 6  # prices are per 1,000,000 tokens: scaleb(6) / scaleb(-6) convert exactly

USD = Annotated[Decimal, Field(ge=0)]


TIERS = ("flex", "priority", "scale", "ultrafast")
"""Service tiers priced apart from the standard one (OpenAI's ``service_tier`` values); a
completion served at ``default`` (or one that names no tier) is charged the standard price."""


class TierPrice(BaseModel):
    """What one model's tokens cost at one service tier, in US dollars per million tokens.

    Attributes:
        input: Price of uncached input tokens at the tier.
        cached_input: Price of input tokens served from the prompt cache; None when the tier
            lists none (cached tokens are then charged as input, and the cost says so).
        output: Price of output tokens, reasoning tokens included.
        cache_write: Price of input tokens written to the prompt cache; None when there is no
            write rate (writes are charged as input).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: USD
    cached_input: USD | None = None
    output: USD
    cache_write: USD | None = None


class Price(BaseModel):
    """What one model's tokens cost, in US dollars per million tokens.

    Attributes:
        model: The provider's model name (``"gpt-4o-mini"``) or an llmcompare id
            (``"chatgpt:my-finetune"``).
        input: Price of uncached input (prompt) tokens.
        cached_input: Price of input tokens served from the provider's prompt cache; None when
            the model has no cached price (cached tokens are then charged as input).
        output: Price of output tokens, reasoning tokens included.
        batch_input: Price of input tokens sent through the Batch API; None when the table has
            none (the documented 50% discount on ``input`` is then applied).
        batch_output: Price of output tokens answered through the Batch API; None as above.
        cache_write: Price of input tokens written to the provider's prompt cache (billed
            from GPT-5.6 on); None when the model has no write rate (writes are input tokens).
        tiers: Prices at the service tiers the provider lists for the model (``"flex"``,
            ``"priority"``): an answer served at a tier not listed here is unpriced, never
            charged the standard price.
        source: Where the price comes from (a URL, or a note for your own prices).
        as_of: When the price was read from the source.
        note: Anything else worth knowing about the entry.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1)
    input: USD
    cached_input: USD | None = None
    output: USD
    batch_input: USD | None = None
    batch_output: USD | None = None
    cache_write: USD | None = None
    tiers: dict[str, TierPrice] = Field(default_factory=dict)
    source: str = ""
    as_of: date = Field(default_factory=date.today)
    note: str = ""

    @property
    def citation(self) -> str:
        """``"<source> (as of <date>)"``, as costs cite it."""
        return f"{self.source or 'user-registered price'} (as of {self.as_of.isoformat()})"


# OpenAI snapshots end in -YYYY-MM-DD (gpt-4o-mini-2024-07-18) or -MMDD (gpt-4-0613,
# gpt-3.5-turbo-1106). Month and day must be plausible, so that a name merely ending in four
# digits (acme-2048) is not taken for a snapshot of acme.
_MONTH, _DAY = r"(?:0[1-9]|1[0-2])", r"(?:0[1-9]|[12]\d|3[01])"
_DATED = re.compile(rf"-(?:20\d\d-{_MONTH}-{_DAY}|{_MONTH}{_DAY})$")


def _key(name: str) -> str:
    return name.strip().lower()


class PriceMatch(NamedTuple):
    """A price found for a model, and whether it is the model's own.

    Attributes:
        price: The price to charge.
        snapshot: The dated snapshot name that has no price entry of its own and is charged at
            ``price`` (its family's price), or None when ``price`` is the model's own entry.
    """

    price: Price
    snapshot: str | None = None

    @property
    def assumption(self) -> str:
        """What charging this price assumes (empty when the price is the model's own)."""
        if self.snapshot is None:
            return ""
        return f"priced as {self.price.model}: no price entry for the snapshot {self.snapshot}"


class _Table:
    """The built-in and registered prices, with a memo of resolved lookups."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._builtin: dict[str, Price] | None = None
        self.user: dict[str, Price] = {}
        self.fallbacks: list[Callable[[str], Price | None]] = []
        self.memo: dict[tuple[str, str | None], PriceMatch | None] = {}

    @property
    def builtin(self) -> dict[str, Price]:
        if self._builtin is None:
            # Read once, on first use: importing llmcompare.cost stays free of file I/O.
            text = resources.files("llmcompare.cost").joinpath("prices.json").read_text("utf-8")
            self._builtin = {_key(p.model): p for p in _parse_own(json.loads(text)["prices"])}
        return self._builtin

    def own(self, name: str) -> Price | None:
        """The entry of exactly this name: registered first, then built-in."""
        key = _key(name)
        if key.startswith("openai/"):  # as gateways name OpenAI's models
            key = key[len("openai/") :]
        return self.user.get(key) or self.builtin.get(key)

    def family(self, name: str) -> PriceMatch | None:
        """A dated snapshot charged at its undated family's entry, marked as such."""
        key = _key(name)
        if not _DATED.search(key):
            return None
        price = self.own(_DATED.sub("", key))
        return None if price is None else PriceMatch(price, name)

    def resolve(self, model: str, response_model: str | None) -> PriceMatch | None:
        memo_key = (model, response_model)
        try:
            return self.memo[memo_key]
        except KeyError:
            pass
        name = model.split(":", 1)[1] if ":" in model else model
        # Own entries first, most precise first: one registered for this very llmcompare id,
        # the provider's reported (dated) name, then the requested name. A reported snapshot
        # without an entry of its own does not downgrade a requested model that has one.
        own = (
            self.user.get(_key(model))
            or (self.own(response_model) if response_model else None)
            or self.own(name)
        )
        found = PriceMatch(own) if own is not None else None
        if found is None:
            # Only then a snapshot's family, said so: a legacy snapshot may cost more or less.
            found = self.family(name) or (self.family(response_model) if response_model else None)
        for fallback in self.fallbacks if found is None else ():
            # Last, other sources for models the table lacks (genai-prices, when installed).
            other = (response_model and fallback(response_model)) or fallback(name)
            if other:
                found = PriceMatch(other)
                break
        with self.lock:
            self.memo[memo_key] = found
        return found

    def add(self, items: Iterable[Price]) -> None:
        with self.lock:
            for p in items:
                self.user[_key(p.model)] = p
            self.memo.clear()


_table = _Table()


def add_price_source(lookup: Callable[[str], Price | None]) -> None:
    """Add a source asked, in order, for a model that neither table nor family prices.

    Args:
        lookup: Takes a model name, returns its price or None.
    """
    with _table.lock:
        _table.fallbacks.append(lookup)
        _table.memo.clear()


def match_price(model: str, response_model: str | None = None) -> PriceMatch | None:
    """Find the price of a model as :func:`get_price` does, saying whether it is the model's own.

    Args:
        model: An llmcompare id (``"chatgpt:gpt-4o-mini"``) or a bare model name.
        response_model: The model name the provider reported, when known.

    Returns:
        The price with the snapshot it stands in for, if any; None when the model is unknown.
    """
    return _table.resolve(model, response_model)


def get_price(model: str, response_model: str | None = None) -> Price | None:
    """Find the price of a model.

    Looked up, in order:

    1. a price registered for the exact llmcompare id (``"chatgpt:gpt-4o-mini"``);
    2. the entry of the model name the provider reported, when it has one
       (``"gpt-4o-2024-05-13"`` keeps its launch price);
    3. the entry of the requested name, the part of the id after ``provider:``
       (``"gpt-4o-mini"``). So a request for ``gpt-4o-mini`` answered by the snapshot
       ``gpt-4o-mini-2024-07-18`` is charged at ``gpt-4o-mini``'s own price;
    4. only when neither name has an entry: a dated snapshot (``-YYYY-MM-DD`` or ``-MMDD``, as
       in ``gpt-4o-2024-08-06`` or ``gpt-3.5-turbo-1106``), requested first, then reported,
       gets its family's entry (``gpt-4o``, ``gpt-3.5-turbo``). An old snapshot may have cost
       something else, so :func:`~llmcompare.cost.cost_of` marks such a cost ``"estimated"``,
       with an assumption naming the snapshot.

    Registered prices win over the built-in table; an ``openai/`` prefix is ignored. Names that
    merely start like a priced model (``gpt-4o-mini-search-preview``) are not priced as it.
    Lookups are memoised, so calling this per request costs a dictionary lookup.

    Args:
        model: An llmcompare id (``"chatgpt:gpt-4o-mini"``) or a bare model name.
        response_model: The model name the provider reported, when known.

    Returns:
        The price, or None when the model is unknown.
    """
    found = _table.resolve(model, response_model)
    return None if found is None else found.price


def oldest_price_date(models: Iterable[str | tuple[str, str | None]]) -> date | None:
    """The oldest ``as_of`` among the prices that cost these models: the date to stamp a report.

    Each model is priced as :func:`get_price` prices it, so the date is that of the entries
    actually used (a family's entry for a snapshot without one), not of the whole table.

    Example:
        >>> from llmcompare.cost import oldest_price_date
        >>> oldest_price_date(["llama:smollm2-135m"]) is None  # local models use no price
        True

    Args:
        models: llmcompare ids (``"chatgpt:gpt-4o-mini"``), or ``(id, response_model)`` pairs
            when the provider reported a more precise name. Unknown and local models are
            skipped.

    Returns:
        The oldest date, or None when none of the models has a price.
    """
    dates = []
    for item in models:
        model, response_model = (item, None) if isinstance(item, str) else item
        found = _table.resolve(model, response_model)
        if found is not None:
            dates.append(found.price.as_of)
    return min(dates, default=None)


def prices() -> list[Price]:
    """Every known price: the built-in table with registered prices replacing its entries."""
    merged = dict(_table.builtin)
    merged.update(_table.user)
    return sorted(merged.values(), key=lambda p: p.model)


def register_price(
    model: str | Price,
    /,
    *,
    input: Decimal | str | int | None = None,
    output: Decimal | str | int | None = None,
    cached_input: Decimal | str | int | None = None,
    source: str = "",
    as_of: date | None = None,
    note: str = "",
) -> Price:
    """Add or replace the price of a model (USD per million tokens).

    Example:
        >>> from llmcompare.cost import register_price
        >>> register_price("chatgpt:my-finetune", input="0.30", output="1.20").output
        Decimal('1.20')

    Args:
        model: The model name or llmcompare id, or a complete :class:`Price`.
        input: Price of uncached input tokens.
        output: Price of output tokens.
        cached_input: Price of cached input tokens, when the model has one.
        source: Where the price comes from.
        as_of: When it was read (default: today).
        note: Anything else worth keeping with it.

    Returns:
        The registered price.

    Raises:
        pydantic.ValidationError: When a price is missing or negative.
    """
    if isinstance(model, Price):
        price = model
    else:
        fields: dict[str, Any] = {
            "model": model,
            "input": input,
            "output": output,
            "cached_input": cached_input,
            "source": source,
            "note": note,
        }
        if as_of is not None:
            fields["as_of"] = as_of
        price = Price.model_validate(fields)
    _table.add([price])
    return price


def reset_prices() -> None:
    """Forget every registered or loaded price; the built-in table stays."""
    with _table.lock:
        _table.user.clear()
        _table.memo.clear()


def _per_million(per_token: Any) -> Decimal:
    # Common tables store USD per token as JSON floats (2.5e-06); going through repr() keeps
    # their shortest decimal form, so 2.5e-06 becomes exactly 2.50 per million.
    if isinstance(per_token, Decimal):
        value = per_token
    elif isinstance(per_token, str):
        value = Decimal(per_token)
    elif isinstance(per_token, (int, float)) and not isinstance(per_token, bool):
        value = Decimal(repr(per_token))
    else:
        raise ConfigurationError(f"a token price must be a number, got {per_token!r}")
    scaled = value.scaleb(_PER_MILLION)
    # Plain digits for display ("10", "0.15"), never "1E+1"; the value is unchanged.
    return scaled.quantize(Decimal(1)) if scaled == scaled.to_integral() else scaled.normalize()


def _parse_own(entries: Iterable[Mapping[str, Any]]) -> list[Price]:
    return [Price.model_validate(e) for e in entries]


def _parse_common(table: Mapping[str, Any], *, source: str, as_of: date | None) -> list[Price]:
    out: list[Price] = []
    for name, entry in table.items():
        if not isinstance(entry, Mapping) or name == "sample_spec":
            continue
        if "input_cost_per_token" not in entry or "output_cost_per_token" not in entry:
            continue  # image, audio or embedding entries priced by other units
        fields: dict[str, Any] = {
            "model": name,
            "input": _per_million(entry["input_cost_per_token"]),
            "output": _per_million(entry["output_cost_per_token"]),
            "source": str(entry.get("source") or source),
        }
        cached = entry.get("cache_read_input_token_cost")
        if cached is not None:
            fields["cached_input"] = _per_million(cached)
        for theirs, ours in (
            ("input_cost_per_token_batches", "batch_input"),
            ("output_cost_per_token_batches", "batch_output"),
        ):
            if entry.get(theirs) is not None:
                fields[ours] = _per_million(entry[theirs])
        if as_of is not None:
            fields["as_of"] = as_of
        out.append(Price.model_validate(fields))
    return out


def load_prices(
    table: str | os.PathLike[str] | Mapping[str, Any],
    /,
    *,
    source: str | None = None,
    as_of: date | None = None,
) -> list[Price]:
    """Register every price of a table, a JSON file or an already parsed mapping.

    Two layouts are understood:

    - the common per-token layout of public price tables: ``{"<model>": {"input_cost_per_token":
      2.5e-06, "output_cost_per_token": 1e-05, "cache_read_input_token_cost": 1.25e-06}, ...}``
      (entries without both token prices, such as image models, are skipped);
    - llmcompare's own layout (as in the package's ``prices.json``): ``{"prices": [{"model": ...,
      "input": "2.50", "cached_input": "1.25", "output": "10.00", "source": ..., "as_of":
      ...}]}``, prices per million tokens.

    Args:
        table: A path to a JSON file, or the parsed mapping.
        source: Source recorded on each price of the common layout that names none (default:
            the file path, or ``"user table"``).
        as_of: Date recorded on prices of the common layout (default: today).

    Returns:
        The prices registered.

    Raises:
        ConfigurationError: When the file cannot be read or parsed.
        pydantic.ValidationError: When an entry has a negative or malformed price.
    """
    if isinstance(table, Mapping):
        data: Any = table
        label = source or "user table"
    else:
        path = Path(table)
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read price table {path}: {exc}") from exc
        label = source or str(path)
    if not isinstance(data, Mapping):
        raise ConfigurationError("a price table must be a JSON object")
    if isinstance(data.get("prices"), list):
        loaded = _parse_own(data["prices"])
    else:
        loaded = _parse_common(data, source=label, as_of=as_of)
    _table.add(loaded)
    return loaded
