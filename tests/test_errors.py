import pickle

from llmcompare import BackendError, ProviderHTTPError, RateLimitError, UnknownModelError
from llmcompare.errors import redact

KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


def test_retryable_by_status() -> None:
    assert ProviderHTTPError("x", model_id="m:x", status=500).retryable
    assert ProviderHTTPError("x", model_id="m:x", status=503).retryable
    assert not ProviderHTTPError("x", model_id="m:x", status=400).retryable
    assert not ProviderHTTPError("x", model_id="m:x", status=401).retryable
    assert RateLimitError("x", model_id="m:x", status=429).retryable
    # A 429 for an exhausted quota is not worth retrying; the backend says so explicitly.
    assert not RateLimitError("quota", model_id="m:x", status=429, retryable=False).retryable


def test_no_secret_in_messages_headers_or_repr() -> None:
    err = ProviderHTTPError(
        f"Incorrect API key provided: {KEY}",
        model_id="chatgpt:gpt-4o-mini",
        status=401,
        headers={"Authorization": f"Bearer {KEY}", "X-Request-ID": "req_1", "Retry-After": "2"},
    )
    for text in (str(err), repr(err), repr(err.headers), err.message):
        assert KEY not in text
    assert err.headers == {"x-request-id": "req_1", "retry-after": "2"}
    assert str(err).startswith("chatgpt:gpt-4o-mini: HTTP 401")
    assert redact(f"key={KEY} rest") == "key=[REDACTED] rest"


def test_errors_pickle_with_their_fields() -> None:
    err = RateLimitError("slow", model_id="m:x", status=429, retry_after=1.5, headers={"a": "b"})
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, RateLimitError)
    assert (back.status, back.retry_after, back.headers, str(back)) == (
        429,
        1.5,
        {"a": "b"},
        str(err),
    )
    plain = pickle.loads(pickle.dumps(BackendError("x", model_id="m:y", retryable=True)))
    assert plain.retryable
    assert plain.model_id == "m:y"


def test_unknown_model_is_a_lookup_error() -> None:
    err = UnknownModelError("lama", ["llama", "chatgpt"])
    assert isinstance(err, LookupError)
    assert err.suggestions == ("llama",)


# issue 22, item 11 (the backend's side: tests/backends/test_chatgpt.py)
def test_redact_masks_urls_credentials_basic_auth_and_registered_secrets() -> None:
    from llmcompare.errors import register_secret

    text = "POST http://alice:pa55w0rd@127.0.0.1:8000/v1 with Basic YWxpY2U6cGE1NXcwcmQ="
    assert redact(text) == "POST http://[REDACTED]@127.0.0.1:8000/v1 with [REDACTED]"
    assert redact("mail alice@example.com") == "mail alice@example.com"
    header_value = "azure-4f9a77e1c0ffee"  # no recognisable shape: only its holder knows
    assert redact(f"api-key: {header_value}") == f"api-key: {header_value}"
    register_secret(header_value)
    register_secret("true")  # too short to mask without masking ordinary words
    assert redact(f"api-key: {header_value}; ok=true") == "api-key: [REDACTED]; ok=true"
    err = ProviderHTTPError(f"echo {header_value}", model_id="m:x", status=401)
    assert header_value not in str(err)
    assert header_value not in repr(err)
