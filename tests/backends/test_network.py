import pytest

from llmcompare import ConfigurationError
from llmcompare.backends._network import check_network, is_loopback
from llmcompare.testing import no_network


@pytest.mark.parametrize(
    ("target", "loopback"),
    [
        ("http://127.0.0.1:8000/v1", True),
        ("http://localhost:1234", True),
        ("http://[::1]:80/", True),
        ("127.0.0.5", True),
        ("https://api.example.com/v1", False),
        ("http://10.0.0.1/", False),
    ],
)
def test_loopback_detection(target: str, loopback: bool) -> None:
    assert is_loopback(target) is loopback


def test_no_network_refuses_remote_and_allows_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMCOMPARE_NO_NETWORK", raising=False)
    check_network("m:x", "https://api.example.com/v1")  # allowed outside the switch
    with no_network():
        check_network("m:x", "http://127.0.0.1:9/v1")
        with pytest.raises(ConfigurationError, match=r"api\.example\.com"):
            check_network("m:x", "https://api.example.com/v1")
        with no_network():  # nests
            pass
        with pytest.raises(ConfigurationError):
            check_network("m:x", "https://api.example.com/v1")
    check_network("m:x", "https://api.example.com/v1")
    monkeypatch.setenv("LLMCOMPARE_NO_NETWORK", "1")
    with pytest.raises(ConfigurationError, match="LLMCOMPARE_NO_NETWORK"):
        check_network("m:x", "https://api.example.com/v1")
