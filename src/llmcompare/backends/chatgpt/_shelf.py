"""When OpenAI stops serving a model: the dated table, and the server's own ``shutdown_date``.

A comparison can be re-run only while its models are served. OpenAI announces shutdowns on its
deprecations page, and its ``/v1/models`` entries may carry the same date as ``shutdown_date``
(``YYYY-MM-DD``). The server's date wins when it gives one (it is the live fact, and a
compatible server may announce its own); otherwise the table below, with its check date, does.
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING

from llmcompare.types import ShelfLife

if TYPE_CHECKING:
    from llmcompare.backends.chatgpt._endpoint import Endpoint

__all__ = [
    "DEPRECATIONS",
    "DEPRECATIONS_CHECKED",
    "SHUTDOWNS",
    "server_shelf_life",
    "table_shelf_life",
]

DEPRECATIONS = "https://developers.openai.com/api/docs/deprecations"
"""OpenAI's deprecations page, the source of :data:`SHUTDOWNS`."""

DEPRECATIONS_CHECKED = date(2026, 12, 7)
"""When :data:`SHUTDOWNS` was checked against the page: the 2026-12-11 rows on the page itself
(a stored copy read that day); the 2026-10-23, 2027-01-14 and 2027-04-01 rows as reports that
quote the page list them (ImportStatic, "Every OpenAI model shutdown date until January 2027",
as of 2026-10-15; dev.to/max_bob, which checked them against ``GET /v1/models``' shutdown_date
on 2026-10-27; dev.to/aidriftline for 2027-04-01)."""

_OCT_23 = date(2026, 10, 23)
_DEC_11 = date(2026, 12, 11)
_JAN_14 = date(2027, 1, 14)
_APR_1 = date(2027, 4, 1)

SHUTDOWNS: dict[str, date] = {
    "gpt-3.5-turbo": _OCT_23,
    "gpt-4": _OCT_23,
    "gpt-4-turbo": _OCT_23,
    "gpt-4o-2024-05-13": _OCT_23,
    "o1": _OCT_23,
    "o1-pro": _OCT_23,
    "o3-mini": _OCT_23,
    "o4-mini": _OCT_23,
    "gpt-4.1-nano": _OCT_23,
    "gpt-5": _DEC_11,
    "gpt-5-mini": _DEC_11,
    "gpt-5-nano": _DEC_11,
    "gpt-5-pro": _DEC_11,
    "o3": _DEC_11,
    "o3-pro": _DEC_11,
    "gpt-4o": _JAN_14,
    "gpt-4o-mini": _JAN_14,
    "gpt-4.1": _JAN_14,
    "gpt-4.1-mini": _JAN_14,
    "gpt-5.1": _APR_1,
    "gpt-5.4-nano": _APR_1,
}
"""Announced shutdown dates by model (a dated snapshot follows its model: gpt-4o-2024-08-06 is
gpt-4o's, unless listed itself). Models not listed have no announced date."""

# Snapshots end in -YYYY-MM-DD or -MMDD (as the price table reads them).
_DATED = re.compile(r"-(?:20\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])|\d{4})$")
_SERVER_TIMEOUT_S = 5.0


def table_shelf_life(name: str) -> ShelfLife | None:
    """The announced shutdown of ``name`` (or of the model a dated snapshot belongs to)."""
    key = name.strip().lower().removeprefix("openai/")
    until = SHUTDOWNS.get(key) or SHUTDOWNS.get(_DATED.sub("", key))
    if until is None:
        return None
    source = f"OpenAI deprecations page {DEPRECATIONS}, checked {DEPRECATIONS_CHECKED.isoformat()}"
    return ShelfLife(until=until, source=source)


def server_shelf_life(endpoint: Endpoint) -> ShelfLife | None:
    """The ``shutdown_date`` the server's ``/v1/models/{name}`` entry gives, if any.

    A lookup that fails for any reason (a server without the route, the network switched off
    in tests, a slow server) gives None: the table decides then. A short-lived client of its
    own is used, so that a server that closes the connection after an error cannot hand the
    model's own client a dead connection.
    """
    from llmcompare.backends.chatgpt import _sdk

    try:
        endpoint.check_network()
        settings = {**endpoint._settings(), "timeout": _SERVER_TIMEOUT_S}
        with _sdk.make_sync_client(**settings) as client:
            entry = client.models.retrieve(endpoint.name)
        found = getattr(entry, "shutdown_date", None)
        until = date.fromisoformat(str(found)) if found else None
    except Exception:  # noqa: BLE001 - optional information: any failure means "not given"
        return None
    if until is None:
        return None
    return ShelfLife(
        until=until, source=f"shutdown_date of {endpoint.shown_url}/models/{endpoint.name}"
    )
