"""The response cache: request keys, a real SQLite file, two processes at once, the CLI."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from llmcompare import (
    BackendError,
    Completion,
    ConfigurationError,
    LLMCompareError,
    Request,
    Usage,
    get_model,
)
from llmcompare.runs import (
    CACHE_FILE,
    CacheInfo,
    ResponseCache,
    default_cache_path,
    model_identity,
    request_key,
)

if TYPE_CHECKING:
    from llmcompare.backends.llama import LlamaModel

HEX64 = re.compile(r"[0-9a-f]{64}")
IDENTITY = {"id": "fake:echo"}


def answer(text: str = "Paris.", model: str = "fake:echo", **extra: Any) -> Completion:
    return Completion(
        text=text,
        finish_reason="stop",
        usage=Usage(input_tokens=7, output_tokens=2),
        model=model,
        **extra,
    )


def key_of(prompt: str, identity: dict[str, Any] = IDENTITY, sample: int = 0) -> str:
    return request_key(identity, Request.of(prompt), sample)


@pytest.fixture
def cache(tmp_path: Path) -> Any:
    with ResponseCache(tmp_path / "responses.sqlite3") as c:
        yield c


# -- the key -------------------------------------------------------------------------------------


def test_key_is_the_sha256_of_the_canonical_json() -> None:
    request = Request.of("héllo", max_tokens=5)
    identity = {"provider": "chatgpt", "model": "gpt-4o-mini", "endpoint": "api.openai.com"}
    payload = {"model": identity, "request": request.model_dump(mode="json"), "sample": 2}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert request_key(identity, request, 2) == expected
    assert HEX64.fullmatch(expected)


def test_key_is_stable_and_ignores_the_order_of_identity_fields() -> None:
    request = Request.of("hi", temperature=0.0)
    a = request_key({"provider": "x", "model": "m"}, request)
    b = request_key({"model": "m", "provider": "x"}, Request.of("hi", temperature=0.0))
    assert a == b


def test_key_changes_with_identity_every_setting_and_sample() -> None:
    base = Request.of("What is 2+2?")
    variants = [
        base,
        Request.of("What is 2+3?"),
        Request.of(
            [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is 2+2?"},
            ]
        ),
        Request.of([{"role": "assistant", "content": "What is 2+2?"}]),
        Request.of(base, max_tokens=10),
        Request.of(base, max_tokens=11),
        Request.of(base, temperature=0.0),
        Request.of(base, temperature=0.7),
        Request.of(base, top_p=0.9),
        Request.of(base, stop=["\n"]),
        Request.of(base, stop=["\n", "."]),
        Request.of(base, seed=1),
        Request.of(base, seed=2),
    ]
    keys = {request_key(IDENTITY, r) for r in variants}
    assert len(keys) == len(variants)
    keys |= {request_key(IDENTITY, base, sample) for sample in (1, 2, 3)}
    assert len(keys) == len(variants) + 3
    for identity in (
        {"id": "fake:other"},
        {"id": "fake:echo", "dtype": "float32"},
        {"provider": "chatgpt", "model": "gpt-4o-mini", "endpoint": "api.openai.com"},
        {"provider": "chatgpt", "model": "gpt-4o-mini", "endpoint": "127.0.0.1:8000"},
    ):
        keys.add(request_key(identity, base))
    assert len(keys) == len(variants) + 3 + 4


def test_identity_must_be_json() -> None:
    with pytest.raises(TypeError):
        request_key({"id": object()}, Request.of("hi"))


# -- one cache file ------------------------------------------------------------------------------


def test_put_then_get_gives_the_same_completion(cache: ResponseCache) -> None:
    key = key_of("capital of France?")
    stored = answer(latency_s=1.25, ttft_s=0.5, request_id="req-1", attempts=2)
    assert cache.get(key) is None
    assert key not in cache
    assert cache.put(key, stored, model="fake:echo") is True
    got = cache.get(key)
    assert got == stored
    assert got is not None
    assert got.latency_s == 1.25
    assert key in cache
    assert len(cache) == 1


def test_the_first_answer_stored_stays(cache: ResponseCache) -> None:
    key = key_of("q")
    assert cache.put(key, answer("first"), model="fake:echo") is True
    assert cache.put(key, answer("second"), model="fake:echo") is False
    got = cache.get(key)
    assert got is not None
    assert got.text == "first"


def test_a_reopened_cache_has_the_answers(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "r.sqlite3"  # folders are created
    key = key_of("q")
    with ResponseCache(path) as first:
        first.put(key, answer(), model="fake:echo")
    with ResponseCache(path) as second:
        assert second.get(key) == answer()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    finally:
        conn.close()


def test_errors_are_never_cached(cache: ResponseCache) -> None:
    key = key_of("q")
    error = BackendError("boom", model_id="fake:echo", retryable=True)
    with pytest.raises(TypeError, match="errors are never cached"):
        cache.put(key, error, model="fake:echo")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cache.put(key, None, model="fake:echo")  # type: ignore[arg-type]
    failed = Completion(text="", finish_reason="error", usage=Usage(), model="fake:echo")
    with pytest.raises(ValueError, match="error"):
        cache.put(key, failed, model="fake:echo")
    assert len(cache) == 0
    assert cache.get(key) is None


def test_keys_must_come_from_request_key(cache: ResponseCache) -> None:
    with pytest.raises(ValueError, match="request key"):
        cache.put("fake:echo", answer(), model="fake:echo")
    with pytest.raises(ValueError, match="request key"):
        cache.get("abc")
    with pytest.raises(ValueError, match="model"):
        cache.put(key_of("q"), answer(), model="")


def test_a_damaged_entry_is_a_logged_miss_and_is_replaced(
    cache: ResponseCache, caplog: pytest.LogCaptureFixture
) -> None:
    key = key_of("q")
    cache.put(key, answer("old"), model="fake:echo")
    conn = sqlite3.connect(cache.path)
    try:
        with conn:
            conn.execute("UPDATE responses SET completion = ? WHERE key = ?", ('{"text": 1', key))
    finally:
        conn.close()
    with caplog.at_level(logging.WARNING, logger="llmcompare.runs"):
        assert cache.get(key) is None
    assert "unreadable" in caplog.text
    assert key in caplog.text
    assert cache.put(key, answer("new"), model="fake:echo") is True
    got = cache.get(key)
    assert got is not None
    assert got.text == "new"


def test_info_counts_entries_per_model(cache: ResponseCache) -> None:
    for i in range(3):
        cache.put(key_of(f"a{i}"), answer(model="llama:x"), model="llama:x")
    cache.put(key_of("b"), answer(model="chatgpt:y"), model="chatgpt:y")
    info = cache.info()
    assert isinstance(info, CacheInfo)
    assert info.path == cache.path
    assert info.entries == 4
    assert info.by_model == {"chatgpt:y": 1, "llama:x": 3}
    assert info.size_bytes > 0
    with pytest.raises(ValueError, match="frozen"):
        info.entries = 0  # type: ignore[misc]


def test_clear_one_model_deletes_only_its_rows(cache: ResponseCache) -> None:
    keep = [key_of(f"keep{i}") for i in range(4)]
    drop = [key_of(f"drop{i}") for i in range(5)]
    for key in keep:
        cache.put(key, answer(model="chatgpt:y"), model="chatgpt:y")
    for key in drop:
        cache.put(key, answer(model="llama:x"), model="llama:x")
    assert cache.clear(model="llama:x") == 5
    assert cache.clear(model="llama:x") == 0
    assert cache.clear(model="nobody:z") == 0
    assert all(cache.get(k) is not None for k in keep)
    assert all(cache.get(k) is None for k in drop)
    assert cache.info().by_model == {"chatgpt:y": 4}
    assert cache.clear() == 4
    assert cache.info().entries == 0


def test_a_closed_cache_refuses_calls(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "r.sqlite3")
    cache.close()
    cache.close()  # twice is harmless
    with pytest.raises(LLMCompareError, match="closed"):
        cache.get(key_of("q"))


def test_threads_share_one_cache(cache: ResponseCache) -> None:
    keys = [key_of(f"t{i}") for i in range(200)]
    stored: list[bool] = []
    lock = threading.Lock()

    def work(offset: int) -> None:
        for key in keys[offset:] + keys[:offset]:
            ok = cache.put(key, answer(f"w{offset}"), model="fake:echo")
            assert cache.get(key) is not None
            with lock:
                stored.append(ok)

    threads = [threading.Thread(target=work, args=(i * 50,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(stored) == len(keys)  # each key stored exactly once
    assert len(cache) == len(keys)


# -- where the file is ---------------------------------------------------------------------------


def test_the_cache_dir_variable_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "my-cache"
    monkeypatch.setenv("LLMCOMPARE_CACHE_DIR", str(folder))
    assert default_cache_path() == folder / CACHE_FILE
    with ResponseCache() as cache:
        assert cache.path == folder / CACHE_FILE
        cache.put(key_of("q"), answer(), model="fake:echo")
    assert (folder / CACHE_FILE).is_file()


def test_without_the_variable_the_user_cache_dir_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.delenv("LLMCOMPARE_CACHE_DIR", raising=False)
    expected = Path(platformdirs.user_cache_dir("llmcompare", appauthor=False)) / CACHE_FILE
    assert default_cache_path() == expected


def test_importing_runs_stays_light() -> None:
    code = (
        "import sys, llmcompare, llmcompare.runs\n"
        "print([m for m in ('sqlite3', 'platformdirs') if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]", out.stdout


# -- damaged files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "junk",
    [b"junk", os.urandom(8192), b"SQLite format 3\x00" + b"\xff" * 4096],
    ids=["short", "random", "bad-header"],
)
def test_a_file_that_is_not_sqlite_is_a_configuration_error(tmp_path: Path, junk: bytes) -> None:
    path = tmp_path / CACHE_FILE
    path.write_bytes(junk)
    with pytest.raises(ConfigurationError) as info:
        ResponseCache(path)
    message = str(info.value)
    assert str(path) in message
    assert "delete it" in message
    assert "LLMCOMPARE_CACHE_DIR" in message


def test_a_file_damaged_inside_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / CACHE_FILE
    with ResponseCache(path) as cache:
        for i in range(300):
            cache.put(key_of(f"q{i}"), answer("x" * 500), model="fake:echo")
    data = bytearray(path.read_bytes())
    page = 4096
    data[2 * page : len(data)] = os.urandom(len(data) - 2 * page)  # the tables' pages
    path.write_bytes(bytes(data))

    def read_everything() -> None:
        with ResponseCache(path) as cache:
            for i in range(300):
                cache.get(key_of(f"q{i}"))
            cache.info()

    with pytest.raises(ConfigurationError, match=r"damaged|not a SQLite"):
        read_everything()


def test_a_newer_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / CACHE_FILE
    ResponseCache(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(ConfigurationError, match="newer llmcompare"):
        ResponseCache(path)


def test_a_folder_is_not_a_cache_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="folder"):
        ResponseCache(tmp_path)


# -- two processes at once -----------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from llmcompare import Completion, Request, Usage
    from llmcompare.runs import ResponseCache, request_key

    path, name, start, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    cache = ResponseCache(path)
    go.with_name(f"ready-{name}").touch()
    while not go.exists():  # both processes start writing at the same moment
        time.sleep(0.001)
    stored = 0
    for i in range(start, start + 300):
        key = request_key({"id": "fake:echo"}, Request.of(f"q{i}"))
        usage = Usage(output_tokens=i)
        done = Completion(text=f"{name}:{i}", finish_reason="stop", usage=usage, model="fake:echo")
        stored += cache.put(key, done, model="fake:echo")
        got = cache.get(key)
        assert got is not None and got.text.endswith(f":{i}"), got
    cache.close()
    print(stored)
    """
)


def test_two_processes_fill_the_same_cache_at_once(tmp_path: Path) -> None:
    path = tmp_path / CACHE_FILE
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), name, str(start), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name, start in (("A", 0), ("B", 150))  # keys 150..299 written by both
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready-{n}").exists() for n in "AB"):
        assert time.monotonic() < deadline, "the writers did not start"
        assert all(p.poll() is None for p in procs), [p.poll() for p in procs]
        time.sleep(0.01)
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    stored = sum(int(out.strip()) for out, _ in outs)
    assert stored == 450  # every key stored exactly once, by one of the two

    with ResponseCache(path) as cache:
        assert len(cache) == 450
        for i in range(450):
            got = cache.get(key_of(f"q{i}"))
            assert got is not None, i
            writer = got.text.split(":")[0]
            assert got.text == f"{writer}:{i}"
            assert got.usage.output_tokens == i
            if i < 150:
                assert writer == "A"
            elif i >= 300:
                assert writer == "B"
            else:
                assert writer in ("A", "B")  # written by both: whoever came first
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT COUNT(*) FROM responses").fetchone() == (450,)
    finally:
        conn.close()


# -- the command ---------------------------------------------------------------------------------


def _llmcompare(*args: str, cache_dir: Path) -> subprocess.CompletedProcess[str]:
    script = shutil.which("llmcompare", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "llmcompare"]
    env = {**os.environ, "LLMCOMPARE_CACHE_DIR": str(cache_dir)}
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_cache_info_and_clear_on_the_command_line(tmp_path: Path) -> None:
    with ResponseCache(tmp_path / CACHE_FILE) as cache:
        for i in range(3):
            cache.put(key_of(f"a{i}"), answer(model="llama:x"), model="llama:x")
        for i in range(2):
            cache.put(key_of(f"b{i}"), answer(model="chatgpt:y"), model="chatgpt:y")

    info = _llmcompare("cache", "info", cache_dir=tmp_path)
    assert info.returncode == 0, info.stderr
    assert str(tmp_path / CACHE_FILE) in info.stdout
    assert re.search(r"entries\s+5", info.stdout)
    assert re.search(r"llama:x\s+3", info.stdout)
    assert re.search(r"chatgpt:y\s+2", info.stdout)
    assert re.search(r"size\s+\d", info.stdout)

    one = _llmcompare("cache", "clear", "--model", "llama:x", cache_dir=tmp_path)
    assert one.returncode == 0, one.stderr
    assert "deleted 3" in one.stdout
    with ResponseCache(tmp_path / CACHE_FILE) as cache:
        assert cache.info().by_model == {"chatgpt:y": 2}

    every = _llmcompare("cache", "clear", cache_dir=tmp_path)
    assert every.returncode == 0, every.stderr
    assert "deleted 2" in every.stdout
    after = _llmcompare("cache", "info", cache_dir=tmp_path)
    assert re.search(r"entries\s+0", after.stdout)


def test_a_corrupt_cache_on_the_command_line_exits_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / CACHE_FILE).write_bytes(b"this is not a database" * 100)
    for args in (("cache", "info"), ("cache", "clear")):
        done = _llmcompare(*args, cache_dir=tmp_path)
        assert done.returncode == 2
        assert done.stdout == ""
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert str(tmp_path / CACHE_FILE) in lines[0]
        assert "delete it" in lines[0]


# -- model identities ----------------------------------------------------------------------------


def test_the_default_identity_is_the_id_and_wrappers_forward_it() -> None:
    from llmcompare import Completion, ModelBase, ModelInfo, Usage, with_retry

    class Mine(ModelBase):
        def __init__(self) -> None:
            super().__init__(ModelInfo(provider="mine", name="m1", open_weights=False))

        def _generate(self, request: Request) -> Completion:
            return Completion(text="ok", finish_reason="stop", usage=Usage(), model=self.id)

    mine = Mine()
    assert mine.cache_identity() == {"id": "mine:m1"}
    assert with_retry(mine).cache_identity() == mine.cache_identity()
    assert model_identity(with_retry(mine)) == {"id": "mine:m1"}
    # A test double is never cached: two fakes with one id answer differently.
    fake = get_model("fake", reply="Paris.")
    assert fake.cache_identity() is None
    assert model_identity(with_retry(fake)) is None


def test_a_model_without_the_method_is_known_by_its_id() -> None:
    class Bare:
        id = "custom:thing"

    assert model_identity(Bare()) == {"id": "custom:thing"}  # type: ignore[arg-type]


def test_chatgpt_identity_holds_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmcompare.backends.chatgpt import ChatGPTModel, ChatGPTOptions

    options = ChatGPTOptions(
        api_key="sk-secret-123",  # type: ignore[arg-type]
        base_url="http://user:pw-secret-789@127.0.0.1:9/v1",
        headers={"api-key": "hdr-secret-456"},  # type: ignore[dict-item]
        organization="org-private",
        reasoning_effort="low",
    )
    model = ChatGPTModel("gpt-4o-mini", options)
    identity = model.cache_identity()
    text = json.dumps(identity)
    for secret in ("sk-secret-123", "hdr-secret-456", "pw-secret-789", "org-private"):
        assert secret not in text
    assert identity == {
        "provider": "chatgpt",
        "model": "gpt-4o-mini",
        "endpoint": "127.0.0.1:9/v1",
        "reasoning_effort": "low",
    }
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    openai = ChatGPTModel("gpt-4o-mini", ChatGPTOptions(api_key="sk-secret-123"))  # type: ignore[arg-type]
    assert openai.cache_identity() == {
        "provider": "chatgpt",
        "model": "gpt-4o-mini",
        "endpoint": "api.openai.com/v1",
    }
    # A gateway's path chooses who answers: two paths on one host are two identities.
    groq = ChatGPTModel("m", ChatGPTOptions(base_url="https://gw.example/v1/acct/groq"))
    openrouter = ChatGPTModel("m", ChatGPTOptions(base_url="https://gw.example/v1/acct/openai"))
    assert groq.cache_identity() != openrouter.cache_identity()
    other = ChatGPTModel("gpt-4o", ChatGPTOptions(api_key="sk-other-999"))  # type: ignore[arg-type]
    request = Request.of("hi")
    assert request_key(model_identity(openai), request) != request_key(
        model_identity(other), request
    )


@pytest.mark.slow
def test_llama_identity_is_stable_and_names_what_decides_answers(llama: LlamaModel) -> None:
    import transformers

    from llmcompare import with_retry
    from llmcompare.backends.llama._locate import embedded_gguf, file_sha256

    first = llama.cache_identity()
    second = llama.cache_identity()
    assert first == second
    assert first["provider"] == "llama"
    assert first["dtype"] == str(llama.hf_model.dtype).removeprefix("torch.")
    assert first["transformers"] == transformers.__version__
    assert first["weights"] == file_sha256(embedded_gguf())
    assert HEX64.fullmatch(first["chat_template"])
    assert "/" not in json.dumps(first)  # no local path: the same file anywhere, the same key
    assert with_retry(llama).cache_identity() == first
    assert HEX64.fullmatch(request_key(model_identity(llama), Request.of("hi")))


def test_llama_folder_identity_changes_with_its_files(tmp_path: Path) -> None:
    from llmcompare.backends.llama._identity import weights_digest
    from llmcompare.backends.llama._locate import Source

    (tmp_path / "config.json").write_text('{"a": 1}')
    (tmp_path / "README.md").write_text("docs")
    source = Source("folder", str(tmp_path), "m")
    before = weights_digest(source, tmp_path)
    (tmp_path / "README.md").write_text("other docs")
    assert weights_digest(source, tmp_path) == before
    (tmp_path / "config.json").write_text('{"a": 2}')
    assert weights_digest(source, tmp_path) != before
