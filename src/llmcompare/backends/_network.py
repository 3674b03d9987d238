"""The process-wide switch that makes backends refuse network calls (see llmcompare.testing)."""

from __future__ import annotations

import ipaddress
import os
import threading
from urllib.parse import urlsplit

from llmcompare.errors import ConfigurationError

_lock = threading.Lock()
_blocked_depth = 0


def _env_blocked() -> bool:
    return os.environ.get("LLMCOMPARE_NO_NETWORK", "").strip().lower() in ("1", "true", "yes")


def network_blocked() -> bool:
    """True when backends must not reach beyond this machine."""
    return _blocked_depth > 0 or _env_blocked()


def block(delta: int) -> None:
    """Raise (+1) or lower (-1) the nesting depth of the no-network switch."""
    global _blocked_depth
    with _lock:
        _blocked_depth = max(0, _blocked_depth + delta)


def is_loopback(url_or_host: str) -> bool:
    """True when a URL or host name points at this machine."""
    host = urlsplit(url_or_host).hostname if "//" in url_or_host else url_or_host
    host = (host or "").strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_network(model_id: str, url_or_host: str) -> None:
    """Refuse a call to a non-loopback address while the no-network switch is on.

    Args:
        model_id: The model about to make the call, named in the error.
        url_or_host: Where the call would go.

    Raises:
        ConfigurationError: When network calls are switched off and the target is not loopback.
    """
    if network_blocked() and not is_loopback(url_or_host):
        host = urlsplit(url_or_host).hostname if "//" in url_or_host else url_or_host
        raise ConfigurationError(
            f"{model_id}: network calls are switched off (llmcompare.testing.no_network() or "
            f"LLMCOMPARE_NO_NETWORK=1) and {host!r} is not on this machine; point the model at "
            "a local server or use a fake model in tests"
        )
