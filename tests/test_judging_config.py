"""The judge in a config file ([judge]) and in the HTML report: built as written, refused in one
line naming the key and its line, secrets kept out; verdicts beside the answers on the page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llmcompare import compare
from llmcompare.backends.fake import FunctionModel
from llmcompare.config import ConfigFileError, judge_from_flags, load_config
from llmcompare.judges import JudgePanel, PairwiseJudge, PointwiseJudge
from llmcompare.ratelimit import RateLimits
from llmcompare.report import write_html
from llmcompare.types import Request

BLOB = re.compile(r'<script type="application/json" id="report-data">(.*?)</script>', re.S)


def write(folder: Path, text: str) -> Path:
    path = folder / "compare.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_judge_table_builds_the_judge_model_with_its_own_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUDGE_KEY", "sk-judge-secret-123456")
    (tmp_path / "rubric.txt").write_text("Prefer the answer a support engineer would send.\n")
    config = load_config(
        write(
            tmp_path,
            """
models = ["fake", "b=fake"]

[judge]
name = "chatgpt:gpt-4.1"
api_key_env = "JUDGE_KEY"
options = { base_url = "http://127.0.0.1:9/v1" }
settings = { max_tokens = 300 }
rubric_file = "rubric.txt"
swap = false
""",
        )
    )
    with config.build() as plan:
        judge = plan.judge
        assert isinstance(judge, PairwiseJudge)
        assert judge.model.id == "chatgpt:gpt-4.1"
        assert judge.rubric == "Prefer the answer a support engineer would send."
        assert judge.swap is False
        assert judge.settings == {"max_tokens": 300}
    public = json.dumps(config.public_dict())
    assert "sk-judge-secret" not in public
    assert "JUDGE_KEY" in public


def test_a_panel_and_the_shorthand(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
models = ["fake", "b=fake"]

[judge]
mode = "pointwise"
vote = "mean"

[[judge.models]]
label = "one"
name = "fake"

[[judge.models]]
label = "two"
name = "fake"
""",
        )
    )
    with config.build() as plan:
        assert isinstance(plan.judge, JudgePanel)
        assert [j.name for j in plan.judge.judges] == ["one", "two"]
        assert all(isinstance(j, PointwiseJudge) for j in plan.judge.judges)
    short = load_config(write(tmp_path, 'models = ["fake", "b=fake"]\njudge = "fake"\n'))
    assert short.judge is not None
    assert [m.name for m in short.judge.models] == ["fake"]


@pytest.mark.filterwarnings("ignore::llmcompare.cost.UnpricedModelWarning")  # fake models
def test_a_judge_models_own_limits_go_to_the_plan_and_the_record_under_its_name(
    tmp_path: Path,
) -> None:
    (tmp_path / "p.jsonl").write_text('{"id": "q", "prompt": "Capital of France?"}\n')
    config = load_config(
        write(
            tmp_path,
            """
models = ["fake", "b=fake"]
prompts = "p.jsonl"
rpm = 6000

[judge]
label = "referee"
name = "fake"
tpm = 1000000
""",
        )
    )
    with config.build() as plan:
        # Its own tpm, and the shared rpm it does not set, under the judge's name.
        assert plan.limits == {"referee": RateLimits(rpm=6000, tpm=1_000_000)}
        result = plan.run(progress=False, cache=False)
    assert result.judging is not None
    # Both orders of the one pair; the two fakes echo alike, so the two prompts are one request.
    assert result.judging.requests == 1
    assert result.run.rate_limits == {
        "fake:echo": RateLimits(rpm=6000),
        "b": RateLimits(rpm=6000),
        "referee": RateLimits(rpm=6000, tpm=1_000_000),
    }


def test_a_judge_named_like_a_model_with_other_limits_is_refused_at_its_line(
    tmp_path: Path,
) -> None:
    config = load_config(
        write(
            tmp_path,
            """models = ["fake", "b=fake"]

[judge]
label = "b"
name = "fake"
rpm = 60
""",
        )
    )
    with pytest.raises(ConfigFileError) as caught:
        config.build()
    assert "\n" not in str(caught.value)
    assert str(caught.value).endswith(
        "compare.toml:6: judge.rpm: the judge 'b' is named like a model of the run, so both "
        "have one entry of limits: give them the same rpm and tpm, or the judge a label of its own"
    )


def test_a_judge_key_variable_that_is_not_set_is_refused_at_its_line(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """models = ["fake", "b=fake"]

[judge]
name = "chatgpt:gpt-4.1"
api_key_env = "NOT_SET_ANYWHERE_42"
""",
        )
    )
    with pytest.raises(ConfigFileError) as caught:
        config.build()
    message = str(caught.value)
    assert "compare.toml:5: judge.api_key_env" in message
    assert "NOT_SET_ANYWHERE_42" in message


def test_the_flags_replace_the_files_judge_and_need_one() -> None:
    with pytest.raises(Exception, match="--judge-mode and --judge-rubric need a judge"):
        judge_from_flags([], "pointwise", None, None)
    flags = judge_from_flags(["a=fake", "b=fake"], "pointwise", None, None)
    assert flags is not None
    assert (flags.mode, [m.label for m in flags.models]) == ("pointwise", ["a", "b"])
    assert judge_from_flags([], None, None, None) is None


def test_the_page_shows_each_items_verdicts_beside_the_answers(tmp_path: Path) -> None:
    def reply(request: Request) -> str:
        text = request.messages[-1].content
        if "question two" in text:
            return "no idea"
        said = "A" if "A's Answer]\nyes" in text else "B"  # x's answer ("yes ...") wins
        return json.dumps({"reasoning": "yes is right.", "verdict": said})

    judge = PairwiseJudge(FunctionModel(reply, name="gpt-4.1"))
    x = FunctionModel(lambda r: "yes " + r.messages[-1].content, name="gpt-4o-mini")
    y = FunctionModel(lambda r: "no " + r.messages[-1].content, name="gpt-4o")
    result = compare([x, y], ["question one", "question two"], judge=judge, progress=False)
    page = write_html(result, tmp_path / "report.html").read_text(encoding="utf-8")
    assert '<section id="judging">' in page
    assert "judging: $" in page
    # Per 1,000 answers: the decision's human units (issue 24), not dollars per one answer.
    assert "$ per 1,000 answers judged at least as good" in page
    assert "no reference scorer: the judge's verdicts are the quality measure" in page
    (blob,) = BLOB.findall(page)
    items = {i["id"]: i for i in json.loads(blob)["items"]}
    first, second = items["item-1"]["v"], items["item-2"]["v"]
    assert first[0]["w"] == "a"
    assert [c["r"] for c in first[0]["c"]] == ["yes is right.", "yes is right."]
    assert first[0]["c"][0]["f"] == 0  # model x's answer shown first
    assert second[0]["w"] is None
    assert "no verdict in the judge's reply" in second[0]["c"][0]["e"]
