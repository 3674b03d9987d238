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


# issue 22, item 26
def test_a_warning_points_at_the_users_call_not_inside_llmcompare() -> None:
    import uuid
    import warnings

    from llmcompare import compare, generate_many
    from llmcompare.backends.fake import FunctionModel
    from llmcompare.cost import CostTracker, UnpricedModelWarning

    def unpriced() -> FunctionModel:
        # A model no price is known for, new to this process (each is warned about once).
        return FunctionModel(lambda r: "ok", name=f"unpriced-{uuid.uuid4().hex}")

    def caught(call: object) -> warnings.WarningMessage:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            assert callable(call)
            call()
        (found,) = [w for w in seen if issubclass(w.category, UnpricedModelWarning)]
        return found

    here = __file__
    found = caught(lambda: compare([unpriced()], ["a", "b"], progress=False, cache=False))
    assert (found.filename, found.lineno) == (here, _line_of("compare([unpriced()]"))
    # The warning is raised on generate_many's event loop: asyncio's frames are skipped too.
    found = caught(lambda: generate_many(unpriced(), ["a", "b"], tracker=CostTracker()))
    assert (found.filename, found.lineno) == (here, _line_of("generate_many(unpriced()"))


def _line_of(text: str) -> int:
    """The line of this file that holds ``text`` (after this function's own mention)."""
    with open(__file__, encoding="utf-8") as f:
        return next(n for n, line in enumerate(f, 1) if text in line and "_line_of" not in line)


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
