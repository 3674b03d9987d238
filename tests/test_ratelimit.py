"""The rate limiter: a token bucket for requests and tokens per minute, and its wrapper."""

from __future__ import annotations

import asyncio
import json
import random
import types
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.cli import run
from llmcompare import Request, compare
from llmcompare.backends.fake import FunctionModel, ScriptedModel
from llmcompare.config import load_config
from llmcompare.errors import ConfigurationError
from llmcompare.judges import JudgePanel, PairwiseJudge, judge_answers
from llmcompare.prompts import PromptItem
from llmcompare.ratelimit import RateLimiter, RateLimits, with_rate_limit


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def admit(limiter: RateLimiter, clock: FakeClock, tokens: int) -> float:
    """Wait on the fake clock until the limiter admits the request; return the admission time."""
    while (wait := limiter.reserve(tokens)) > 0:
        clock.now += wait
    return clock.now


def max_in_window(events: list[tuple[float, int]], window: float = 60.0) -> int:
    """The largest total of events whose times fall in any window of ``window`` seconds."""
    best = 0
    for i, (start, _) in enumerate(events):
        total = sum(n for t, n in events[i:] if t < start + window)
        best = max(best, total)
    return best


@settings(max_examples=40, deadline=None)
@given(rpm=st.integers(min_value=61, max_value=600), n=st.integers(min_value=50, max_value=400))
def test_token_bucket_never_admits_more_than_rpm_in_any_minute(rpm: int, n: int) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=rpm, clock=clock)
    events = [(admit(limiter, clock, 0), 1) for _ in range(n)]
    assert max_in_window(events) <= rpm
    if n > 2 * rpm:  # sustained: close to the limit, not far below it
        assert max_in_window(events[n // 2 :]) >= rpm * 0.95


@settings(max_examples=40, deadline=None)
@given(
    tpm=st.integers(min_value=6_100, max_value=100_000),
    sizes=st.lists(st.integers(min_value=1, max_value=100), min_size=20, max_size=200),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_token_bucket_counts_estimates_and_corrects_with_real_usage(
    tpm: int, sizes: list[int], seed: int
) -> None:
    clock = FakeClock()
    limiter = RateLimiter(tpm=tpm, clock=clock)
    rng = random.Random(seed)
    events = []
    for estimate in sizes:
        at = admit(limiter, clock, estimate)
        actual = max(0, estimate + rng.randint(-estimate, 20))  # real usage differs either way
        limiter.settle(estimate, actual)
        events.append((at, actual))
    # The real usage stays under the limit, give or take the underestimate of one request
    # in flight.
    assert max_in_window(events) <= tpm + 20


def test_a_request_larger_than_the_bucket_still_goes_when_the_bucket_is_full() -> None:
    clock = FakeClock()
    limiter = RateLimiter(tpm=6100, clock=clock)  # 100 tokens per second, 100 at once
    assert limiter.reserve(500) == 0.0  # full bucket: goes, leaving a debt of 400
    assert limiter.reserve(50) == pytest.approx(4.5)  # 400 of debt + 50, at 100 per second
    clock.now += 4.5
    assert limiter.reserve(50) == 0.0


def test_limiter_rejects_bad_limits() -> None:
    with pytest.raises(ValueError, match="rpm"):
        RateLimiter(rpm=0)
    with pytest.raises(ValueError, match="burst_s"):
        RateLimiter(tpm=10, burst_s=0)


# -- compare: one owner for every model's limits ---------------------------------------------------


class VirtualTime:
    """A clock that moves only when the rate limiter waits: waits cost no real time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep_blocking(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def virtual_time(monkeypatch: pytest.MonkeyPatch) -> VirtualTime:
    """Every limiter built from here on runs on one virtual clock, and waits on it."""
    import llmcompare.ratelimit

    clock = VirtualTime()
    real = llmcompare.ratelimit.RateLimiter

    def build(**limits: float | None) -> RateLimiter:
        return real(**limits, clock=clock)  # type: ignore[arg-type]

    monkeypatch.setattr(llmcompare.ratelimit, "RateLimiter", build)
    monkeypatch.setattr(llmcompare.ratelimit, "asyncio", types.SimpleNamespace(sleep=clock.sleep))
    monkeypatch.setattr(
        llmcompare.ratelimit, "time", types.SimpleNamespace(sleep=clock.sleep_blocking)
    )
    return clock


@pytest.mark.filterwarnings("ignore::llmcompare.cost.UnpricedModelWarning")  # fake models
def test_compare_gives_each_model_its_own_limits_and_records_them(
    virtual_time: VirtualTime, tmp_path: Path
) -> None:
    sent: dict[str, list[float]] = {"shared": [], "own": []}

    def answer(label: str) -> ScriptedModel:
        def reply(request: Request) -> str:
            sent[label].append(virtual_time.now)  # when the limiter let it go
            return "ok"

        return ScriptedModel(default=reply, name=label)

    result = compare(
        {"shared": answer("shared"), "own": answer("own")},
        ["a", "b", "c", "d", "e"],
        rpm=2,  # for each model without limits of its own
        limits={"own": RateLimits(rpm=600_000)},
        concurrency=1,
        progress=False,
        cache=False,
        out=tmp_path / "run",
    )
    assert [row.error for row in result.rows] == [None] * 10
    # The shared limit held "shared" to two requests in any minute, and it did have to wait.
    assert max_in_window([(t, 1) for t in sent["shared"]]) <= 2
    assert sent["shared"][-1] > 60
    # "own" ran under its own limit, which never made it wait.
    assert len(sent["own"]) == 5
    assert len(set(sent["own"])) == 1
    config = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))["config"]
    assert (config["rpm"], config["tpm"]) == (2, None)
    assert config["limits"] == {"own": {"rpm": 600_000, "tpm": None}}


def test_compare_refuses_limits_it_cannot_apply() -> None:
    model = ScriptedModel(default="ok")
    with pytest.raises(ConfigurationError, match=r"limits name models that are not in this run"):
        compare([model], ["a"], limits={"other": RateLimits(rpm=1)}, progress=False, cache=False)
    with pytest.raises(ConfigurationError, match=r"must be a RateLimits"):
        compare(
            [model],
            ["a"],
            limits={model.id: {"rpm": 1}},  # type: ignore[dict-item]
            progress=False,
            cache=False,
        )
    assert model.history == []  # refused before anything was sent


# -- the judge's limits: the same owner, by the judge's name --------------------------------------


A_IS_BETTER = json.dumps({"reasoning": "A is better.", "verdict": "A"})


def long_waits(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "llmcompare.ratelimit"]


@pytest.mark.filterwarnings("ignore::llmcompare.cost.UnpricedModelWarning")  # fake models
@pytest.mark.filterwarnings("ignore:.*judge not cached:RuntimeWarning")  # fake judges
def test_compare_gives_each_judge_its_own_limits_by_its_name_and_records_them(
    virtual_time: VirtualTime, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    sent: dict[str, list[float]] = {"free": [], "strict": []}

    def judge(name: str) -> PairwiseJudge:
        def reply(request: Request) -> str:
            sent[name].append(virtual_time.now)  # when the limiter let it go
            return A_IS_BETTER

        return PairwiseJudge(FunctionModel(reply, name=f"{name}-model"), name=name)

    panel = JudgePanel([judge("free"), judge("strict")])
    with caplog.at_level("WARNING", logger="llmcompare.ratelimit"):
        result = compare(
            {"a": ScriptedModel(default="yes"), "b": ScriptedModel(default="no")},
            ["q"],  # one answer each: the models never wait, the judges ask twice (swapped)
            rpm=0.5,
            limits={"free": RateLimits(), "strict": RateLimits(rpm=0.25)},
            judge=panel,
            concurrency=1,
            progress=False,
            cache=False,
            out=tmp_path / "run",
        )
    assert result.judging is not None
    assert (result.judging.requests, result.judging.failed) == (4, 0)
    # "free" has no limit of its own: the shared rpm=0.5 would have held its second request.
    assert len(sent["free"]) == 2
    assert sent["free"][1] == sent["free"][0]
    # "strict" waited for its own limit, the only wait of the run, and was told so.
    assert sent["strict"][1] - sent["strict"][0] == pytest.approx(4 * 61)
    assert long_waits(caplog) == [
        "fake:strict-model: the next request waits 4 min 4 s for the rate limit rpm=0.25 (one "
        "request every 4 min 4 s)"
    ]
    # The record says what each model and judge was held to; the configuration, as given.
    assert result.run.rate_limits == {
        "a": RateLimits(rpm=0.5),
        "b": RateLimits(rpm=0.5),
        "strict": RateLimits(rpm=0.25),
    }
    config = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))["config"]
    assert config["limits"] == {
        "free": {"rpm": None, "tpm": None},
        "strict": {"rpm": 0.25, "tpm": None},
    }


@pytest.mark.filterwarnings("ignore::llmcompare.cost.UnpricedModelWarning")  # fake models
def test_a_config_judges_own_limit_replaces_the_shared_one_instead_of_adding_to_it(
    virtual_time: VirtualTime, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    (tmp_path / "p.jsonl").write_text('{"id": "q", "prompt": "Capital of France?"}\n')
    (tmp_path / "compare.toml").write_text(
        """
prompts = "p.jsonl"
rpm = 0.5
concurrency = 1

[[models]]
name = "fake"
options = { reply = "Paris." }

[[models]]
label = "b"
name = "fake"
options = { reply = "Lyon." }

[judge]
label = "referee"
name = "fake"
rpm = 600000
""",
        encoding="utf-8",
    )
    with (
        load_config(tmp_path / "compare.toml").build() as plan,
        caplog.at_level("WARNING", logger="llmcompare.ratelimit"),
    ):
        result = plan.run(progress=False, cache=False)
        assert plan.judge is not None
        judge = plan.judge.judges[0].model
    assert result.judging is not None
    # Held to its own 600,000 rpm alone: under the shared 0.5 as well, its second request
    # would have waited two minutes.
    assert long_waits(caplog) == []
    assert virtual_time.now == 0.0
    assert judge.history[1].messages != judge.history[0].messages  # both orders were sent
    assert result.run.rate_limits["referee"] == RateLimits(rpm=600_000)


@pytest.mark.filterwarnings("ignore::llmcompare.cost.UnpricedModelWarning")  # fake models
def test_a_config_judge_rejudging_a_record_is_held_to_its_own_limit(
    virtual_time: VirtualTime, tmp_path: Path
) -> None:
    record = compare(
        {"a": ScriptedModel(default="yes"), "b": ScriptedModel(default="no")},
        ["q"],
        progress=False,
        cache=False,
    )
    (tmp_path / "p.jsonl").write_text('{"id": "q", "prompt": "q"}\n')
    (tmp_path / "compare.toml").write_text(
        f"""
prompts = "p.jsonl"

[[models]]
label = "a"
name = "fake"
rpm = 600000

[[models]]
label = "b"
name = "fake"

[judge]
label = "strict"
name = "fake"
rpm = 0.25
options = {{ reply = '{A_IS_BETTER}' }}
""",
        encoding="utf-8",
    )
    with load_config(tmp_path / "compare.toml").build() as plan:
        assert plan.judge is not None
        # The plan's limits as they are: the models' entries are the record's, not the judge's.
        assert set(plan.limits) == {"a", "strict"}
        judged = record.rejudge(plan.judge, limits=plan.limits, cache=False, progress=False)
        asked = len(plan.judge.judges[0].model.history)
    assert judged.judging is not None
    assert (judged.judging.requests, judged.judging.failed, asked) == (2, 0, 2)  # both orders
    # The second request waited for the judge's own rpm=0.25: one request every 4 min 4 s.
    assert virtual_time.now == pytest.approx(4 * 61)
    # The record states the judge's limit; the models' stay as the record had them (none).
    assert record.run.rate_limits == {}
    assert judged.run.rate_limits == {"strict": RateLimits(rpm=0.25)}


@pytest.mark.filterwarnings("ignore::llmcompare.cost.UnpricedModelWarning")  # fake models
def test_a_rejudged_record_states_the_new_judges_limits_instead_of_the_old_ones(
    virtual_time: VirtualTime,
) -> None:
    models = {"a": ScriptedModel(default="yes"), "b": ScriptedModel(default="no")}
    old = PairwiseJudge(ScriptedModel(default=A_IS_BETTER), name="old")
    own = {"a": RateLimits(rpm=6000), "old": RateLimits(tpm=90_000)}
    record = compare(models, ["q"], judge=old, limits=own, progress=False, cache=False)
    assert record.run.rate_limits == own
    new = PairwiseJudge(ScriptedModel(default=A_IS_BETTER), name="new")
    shared = record.rejudge(new, rpm=3000, cache=False, progress=False)
    assert shared.run.rate_limits == {"a": RateLimits(rpm=6000), "new": RateLimits(rpm=3000)}
    unlimited = record.rejudge(new, cache=False, progress=False)
    assert unlimited.run.rate_limits == {"a": RateLimits(rpm=6000)}
    assert record.run.rate_limits == own  # the first record is left as it was


def test_compare_refuses_limits_of_neither_a_model_nor_a_judge_before_sending() -> None:
    a, b = ScriptedModel(default="yes", name="a"), ScriptedModel(default="no", name="b")
    referee = ScriptedModel(default=A_IS_BETTER, name="referee")
    judge = PairwiseJudge(referee, name="referee")
    with pytest.raises(ConfigurationError) as caught:
        compare(
            [a, b],
            ["q"],
            limits={"nobody": RateLimits(rpm=1), "referee": RateLimits(rpm=1)},
            judge=judge,
            progress=False,
            cache=False,
        )
    assert str(caught.value) == (
        "limits name models that are not in this run, nor judges of it: ['nobody']; its "
        "models: ['fake:a', 'fake:b']; its judges: ['referee']"
    )
    with pytest.raises(ConfigurationError, match=r"^limits must map names to RateLimits"):
        compare([a, b], ["q"], limits=[RateLimits()], progress=False, cache=False)  # type: ignore[arg-type]
    assert a.history == b.history == referee.history == []  # refused before anything was sent
    answers = {("q", "x", 0): a.generate("q"), ("q", "y", 0): b.generate("q")}
    with pytest.raises(
        ConfigurationError, match=r"limits name judges that are not judging: \['x'\]"
    ):
        judge_answers(
            judge, [PromptItem(id="q", prompt="q")], answers, ["x", "y"], limits={"x": RateLimits()}
        )
    assert referee.history == []


@pytest.mark.parametrize("bad", [0, -1.5, float("nan"), True, "60"])
def test_rate_limits_are_positive_numbers(bad: object) -> None:
    with pytest.raises(ValueError, match="rpm must be positive"):
        RateLimits(rpm=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tpm must be positive"):
        RateLimits(tpm=bad)  # type: ignore[arg-type]
    assert RateLimits() == RateLimits(rpm=None, tpm=None)  # no limit at all


# -- issue 22, item 17: a limit that makes a request wait long says so ----------------------------


# issue 22, item 17
@pytest.mark.filterwarnings("ignore::llmcompare.cost.UnpricedModelWarning")  # fake models
def test_a_wait_over_a_minute_is_said_naming_the_model_the_limit_and_the_wait(
    virtual_time: VirtualTime, caplog: pytest.LogCaptureFixture
) -> None:
    model = ScriptedModel(default="ok", name="slow")
    with caplog.at_level("WARNING", logger="llmcompare.ratelimit"):
        result = compare([model], ["a", "b"], rpm=0.5, concurrency=1, progress=False, cache=False)
    assert [row.error for row in result.rows] == [None, None]
    # The first request goes at once; the second waits 122 s (two minutes and the burst).
    said = [r.getMessage() for r in caplog.records if r.name == "llmcompare.ratelimit"]
    assert said == [
        f"{model.id}: the next request waits 2 min 2 s for the rate limit rpm=0.5 (one request "
        "every 2 min 2 s)"
    ]


# issue 22, item 17
def test_a_short_wait_says_nothing(
    virtual_time: VirtualTime, caplog: pytest.LogCaptureFixture
) -> None:
    model = with_rate_limit(ScriptedModel(default="ok"), rpm=2)
    with caplog.at_level("WARNING", logger="llmcompare.ratelimit"):
        assert [model.generate(p).text for p in ("a", "b", "c")] == ["ok"] * 3
    assert virtual_time.now > 30  # it did wait, under a minute each time
    assert [r for r in caplog.records if r.name == "llmcompare.ratelimit"] == []


# issue 22, item 17
@pytest.mark.parametrize(("name", "value"), [("rpm", 1e-9), ("tpm", 1e-9), ("rpm", 1 / 1500)])
def test_a_limit_under_one_a_day_is_refused(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{name}={value!r} is less than one a day") as info:
        RateLimiter(**{name: value})
    assert "a request would wait longer than a day" in str(info.value)
    with pytest.raises(ValueError, match="less than one a day"):
        RateLimits(**{name: value})
    RateLimiter(**{name: 1 / 1440})  # one a day is a limit


# issue 22, item 17
@pytest.mark.parametrize("flags", [["-O", "rpm=1e-9"], ["--rpm", "1e-9"]])
def test_the_command_refuses_a_limit_under_one_a_day_before_sending(flags: list[str]) -> None:
    done = run("compare", "--suite", "builtin", "-m", "fake", *flags, "--no-progress")
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("llmcompare: error: ")
    assert "rpm=1e-09 is less than one a day" in line


@pytest.mark.filterwarnings("ignore::llmcompare.cost.UnpricedModelWarning")  # fake models
def test_a_judge_audit_is_held_to_its_rate_limit(virtual_time: VirtualTime) -> None:
    from llmcompare.judges import audit

    referee = ScriptedModel(default=A_IS_BETTER, name="referee")
    rows = [{"question": "q", "answer_a": "yes", "answer_b": "no", "human": "a"}]
    found = audit(
        PairwiseJudge(referee),
        rows,
        self_consistency=False,
        rpm=0.25,
        cache=False,
        progress=False,
    )
    assert (found.requests, len(referee.history)) == (2, 2)  # both orders
    # The second request waited for rpm=0.25: one request every 4 min 4 s.
    assert virtual_time.now == pytest.approx(4 * 61)


def test_the_judge_commands_refuse_a_rate_limit_of_zero(tmp_path: Path) -> None:
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text('{"question": "q", "answer_a": "y", "answer_b": "n", "human": "a"}\n')
    for args in (["rejudge", str(tmp_path)], ["judge-audit", str(labelled)]):
        refused = run(*args, "--judge", "fake", "--rpm", "0")
        assert refused.returncode == 2
        assert "--rpm" in refused.stderr
