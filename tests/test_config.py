"""Config files (llmcompare.config) and `llmcompare compare -c / -m / -O`."""

from __future__ import annotations

import json
import re
import shutil
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from helpers.cli import run
from helpers.openai_server import OpenAIServer
from llmcompare import ModelWrapper, Request
from llmcompare.config import (
    CompareConfig,
    ConfigFileError,
    ModelConfig,
    load_config,
    models_from_flags,
)
from llmcompare.cost import Budget
from llmcompare.errors import ConfigurationError
from llmcompare.ratelimit import RateLimits
from llmcompare.types import GenerationSettings

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "guides" / "config.md"

PROMPTS = (
    '{"id": "a", "prompt": "say yes", "reference": "yes", "scorers": ["contains"]}\n'
    '{"id": "b", "prompt": "say 42", "reference": "42", "scorers": ["numeric"]}\n'
)

TWO_SERVERS = """\
# two chatgpt models, the same name on two servers
prompts = "p.jsonl"
samples = 1

[settings]
max_tokens = 64

[[models]]
label = "server-a"
name = "chatgpt:gpt-4o-mini"
api_key_env = "KEY_A"
options = {{ base_url = "{url_a}", timeout = 30 }}

[[models]]
label = "server-b"
name = "chatgpt:gpt-4o-mini"
api_key_env = "KEY_B"
rpm = 6000
options = {{ base_url = "{url_b}" }}
settings = {{ max_tokens = 32, temperature = 0.5 }}
"""

KEY_A = "sk-test-key-of-server-a-0001"
KEY_B = "sk-test-key-of-server-b-0002"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the first line holding ``needle``."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write(tmp_path, "p.jsonl", PROMPTS)
    return tmp_path


@pytest.fixture
def two_servers(folder: Path) -> Path:
    text = TWO_SERVERS.format(url_a="http://127.0.0.1:9/v1", url_b="http://127.0.0.1:10/v1")
    return write(folder, "compare.toml", text)


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEY_A", KEY_A)
    monkeypatch.setenv("KEY_B", KEY_B)


# -- reading ---------------------------------------------------------------------------------------


def test_a_toml_file_is_read_and_validated(two_servers: Path) -> None:
    config = load_config(two_servers)
    assert config.path == str(two_servers)
    assert [m.label for m in config.models] == ["server-a", "server-b"]
    a, b = config.models
    assert a.name == b.name == "chatgpt:gpt-4o-mini"
    assert a.options == {"base_url": "http://127.0.0.1:9/v1", "timeout": 30}
    assert (a.api_key_env, b.api_key_env) == ("KEY_A", "KEY_B")
    assert b.rpm == 6000
    assert b.settings.as_settings() == {"max_tokens": 32, "temperature": 0.5}
    assert a.settings.as_settings() == {}
    assert config.settings.as_settings() == {"max_tokens": 64}
    assert config.prompt_files() == [two_servers.parent / "p.jsonl"]


def test_yaml_reads_the_same_config(two_servers: Path, folder: Path) -> None:
    pytest.importorskip("yaml")
    path = write(
        folder,
        "compare.yaml",
        """\
prompts: p.jsonl
samples: 1
settings: {max_tokens: 64}
models:
  - label: server-a
    name: chatgpt:gpt-4o-mini
    api_key_env: KEY_A
    options: {base_url: "http://127.0.0.1:9/v1", timeout: 30}
  - label: server-b
    name: chatgpt:gpt-4o-mini
    api_key_env: KEY_B
    rpm: 6000
    options: {base_url: "http://127.0.0.1:10/v1"}
    settings: {max_tokens: 32, temperature: 0.5}
""",
    )
    assert load_config(path).model_dump() == load_config(two_servers).model_dump()
    assert load_config(path).public_dict() == load_config(two_servers).public_dict()


def test_a_yaml_error_names_file_key_and_line(folder: Path) -> None:
    pytest.importorskip("yaml")
    text = "models:\n  - name: fake\n    labell: x\n"
    path = write(folder, "c.yml", text)
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}:3: models[0].labell: unknown key; did you mean 'label'?"


def test_yaml_without_pyyaml_says_which_extra(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml now raises ImportError
    path = write(folder, "c.yaml", "models: [fake]\n")
    with pytest.raises(ConfigFileError, match=r"needs PyYAML: pip install 'llmcompare\[report\]'"):
        load_config(path)


def test_models_may_be_strings(folder: Path) -> None:
    config = load_config(write(folder, "c.toml", 'models = ["fake", "echo2=fake"]\n'))
    assert [(m.label, m.name) for m in config.models] == [(None, "fake"), ("echo2", "fake")]
    with config.build() as plan:
        assert list(plan.models) == ["fake:echo", "echo2"]  # no label: the model's id


def test_a_missing_file_and_an_unknown_format(folder: Path) -> None:
    with pytest.raises(ConfigFileError, match=r"nope\.toml: no such file$"):
        load_config(folder / "nope.toml")
    with pytest.raises(ConfigFileError, match=r"c\.ini: unknown format: use \.toml, \.yaml"):
        load_config(write(folder, "c.ini", "x = 1\n"))


def test_a_toml_syntax_error_names_file_line_and_column(folder: Path) -> None:
    path = write(folder, "c.toml", 'samples = 1\n\n[[models]]\nname "fake"\n')
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:4:6: invalid TOML: ")
    assert "\n" not in message


# -- refused, with file, key and line --------------------------------------------------------------


@pytest.mark.parametrize(
    ("good", "bad", "key", "hint"),
    [
        ("samples = 1", "sampels = 1", "sampels", "did you mean 'samples'?"),
        (
            'options = { base_url = "http://127.0.0.1:10/v1" }',
            'optionz = { base_url = "http://127.0.0.1:10/v1" }',
            "models[1].optionz",
            "did you mean 'options'?",
        ),
        (
            "temperature = 0.5 }",
            "temprature = 0.5 }",
            "models[1].settings.temprature",
            "did you mean 'temperature'?",
        ),
        ("[settings]\nmax_tokens", "[settings]\nmax_tokenz", "settings.max_tokenz", "did you"),
        # A backend option: checked by the chatgpt backend's own options model.
        (
            "timeout = 30",
            "time_out = 30",
            "models[0].options.time_out",
            "did you mean 'timeout'?",
        ),
        ('api_key_env = "KEY_B"', 'api_key_envv = "KEY_B"', "models[1].api_key_envv", "did you"),
    ],
)
def test_a_misspelled_key_is_refused_with_file_key_and_line(
    folder: Path, good: str, bad: str, key: str, hint: str
) -> None:
    text = TWO_SERVERS.format(url_a="http://127.0.0.1:9/v1", url_b="http://127.0.0.1:10/v1")
    assert good in text
    text = text.replace(good, bad, 1)
    path = write(folder, "compare.toml", text)
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    wrong = key.rpartition(".")[2].rpartition("]")[2]
    expected = f"{path}:{line_of(text, wrong)}: {key}: unknown key; "
    assert str(caught.value).startswith(expected), str(caught.value)
    assert hint in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.problems[0].line == line_of(text, wrong)


def test_the_same_key_in_the_second_table_gets_the_second_line(folder: Path) -> None:
    text = '[[models]]\nname = "fake"\n\n[[models]]\nname = "fake"\nlabel = "x"\nrpmm = 3\n'
    path = write(folder, "c.toml", text)
    with pytest.raises(ConfigFileError, match=rf"^{re.escape(str(path))}:7: models\[1\]\.rpmm: "):
        load_config(path)


def test_every_problem_is_listed_one_per_line(folder: Path) -> None:
    text = 'samples = 0\nconcurrency = "many"\n\n[[models]]\nname = "fake"\nlabl = "x"\n'
    path = write(folder, "c.toml", text)
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    lines = str(caught.value).splitlines()
    assert lines == [
        f"{path}:1: samples: Input should be greater than or equal to 1",
        f"{path}:2: concurrency: Input should be a valid integer, unable to parse string as an "
        "integer",
        f"{path}:6: models[0].labl: unknown key; did you mean 'label'?",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('samples = "two"', "1: samples: Input should be a valid integer"),
        ("rpm = -1", "1: rpm: Input should be greater than 0"),
        ("[budget]\nmax_usd = -1", "2: budget.max_usd: Input should be greater than or equal to 0"),
        ('models = [{ name = "fake", label = "a=b" }]', "1: models[0].label: a label is not empty"),
        ('scorers = ["contains", "exactly"]', "1: scorers[1]: unknown scorer 'exactly'"),
        ("[settings]\ntemperature = 3", "2: settings.temperature: Input should be less than"),
        ('[[models]]\nlabel = "x"', "1: models[0].name: required, and missing"),
        ('models = [{ name = "lama" }]', "1: models[0].name: unknown model 'lama': did you mean"),
        (
            '[[models]]\nname = "llama"\noptions = { device = "tpu" }',
            "3: models[0].options.device: String should match pattern",
        ),
        (
            'models = ["fake", "fake"]',
            "1: models[1].name: 'fake' names two models of the run: give each its own label",
        ),
        (
            '[[models]]\nname = "fake"\napi_key_env = "KEY_A"',
            "3: models[0].api_key_env: the 'fake' backend takes no API key",
        ),
    ],
)
def test_a_wrong_value_is_refused_with_its_line(folder: Path, text: str, message: str) -> None:
    path = write(folder, "c.toml", text + "\n")
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:{message}"), str(caught.value)


def test_a_key_written_into_the_file_is_refused_without_echoing_it(folder: Path) -> None:
    secret = "sk-live-written-into-the-file-1234"
    text = f'[[models]]\nname = "chatgpt"\noptions = {{ api_key = "{secret}" }}\n'
    with pytest.raises(ConfigFileError) as caught:
        load_config(write(folder, "c.toml", text))
    assert "models[0].options.api_key: a key does not belong in a config file" in str(caught.value)
    assert "api_key_env" in str(caught.value)
    text = f'[[models]]\nname = "chatgpt"\napi_key_env = "{secret}"\n'
    with pytest.raises(ConfigFileError) as caught:
        load_config(write(folder, "c.toml", text))
    assert "must be the NAME of an environment variable" in str(caught.value)
    for message in (str(caught.value), repr(caught.value)):
        assert "written-into" not in message


# -- building --------------------------------------------------------------------------------------


def test_build_gives_compare_its_arguments_by_label(two_servers: Path, keys: None) -> None:
    with load_config(two_servers).build() as plan:
        assert list(plan.models) == ["server-a", "server-b"]
        assert [item.id for item in plan.prompts or ()] == ["a", "b"]
        assert plan.overrides == {"server-b": {"max_tokens": 32, "temperature": 0.5}}
        assert plan.settings == {"max_tokens": 64}
        kwargs = plan.compare_kwargs()
        assert kwargs["models"] is plan.models
        assert kwargs["samples"] == 1
        assert kwargs["max_tokens"] == 64


def test_a_per_model_rate_limit_goes_to_compare_by_label(two_servers: Path, keys: None) -> None:
    with load_config(two_servers).build() as plan:
        # compare() applies every limit: the models themselves are not wrapped.
        assert not any(isinstance(m, ModelWrapper) for m in plan.models.values())
        assert plan.limits == {"server-b": RateLimits(rpm=6000)}
        assert (plan.rpm, plan.tpm) == (None, None)
        assert plan.compare_kwargs()["limits"] == {"server-b": RateLimits(rpm=6000)}
    # A shared limit applies to every model without its own; a model's own replaces only the
    # limit it sets.
    shared = load_config(two_servers).model_copy(update={"rpm": 60, "tpm": 1000})
    with shared.build() as plan:
        assert (plan.rpm, plan.tpm) == (60, 1000)
        assert plan.limits == {"server-b": RateLimits(rpm=6000, tpm=1000)}
    # A flag replaces every model's own limit.
    flags = load_config(two_servers).with_overrides(rpm=60)
    with flags.build() as plan:
        assert plan.limits == {}
        assert plan.compare_kwargs()["rpm"] == 60


def test_the_plan_runs_with_each_models_limits_in_the_record(folder: Path, keys: None) -> None:
    with OpenAIServer() as a, OpenAIServer() as b:
        text = TWO_SERVERS.format(url_a=a.url, url_b=b.url)
        path = write(folder, "compare.toml", 'rpm = 600_000\nout = "run"\n' + text)
        with load_config(path).build() as plan:
            result = plan.run(progress=False, cache=False)
        assert len(a.chat_requests) == len(b.chat_requests) == 2
    assert [s.model for s in result.summaries] == ["server-a", "server-b"]
    record = json.loads((folder / "run" / "run.json").read_text(encoding="utf-8"))["config"]
    assert (record["rpm"], record["tpm"]) == (600_000, None)
    assert record["limits"] == {"server-b": {"rpm": 6000, "tpm": None}}


def test_a_missing_key_variable_is_refused_naming_it_before_anything_is_sent(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OpenAIServer() as a, OpenAIServer() as b:
        text = TWO_SERVERS.format(url_a=a.url, url_b=b.url)
        path = write(folder, "compare.toml", text)
        monkeypatch.setenv("KEY_A", KEY_A)
        monkeypatch.delenv("KEY_B", raising=False)
        config = load_config(path)  # reading never looks at the environment
        with pytest.raises(ConfigFileError) as caught:
            config.build()
        assert str(caught.value) == (
            f"{path}:{line_of(text, 'KEY_B')}: models[1].api_key_env: the environment variable "
            "KEY_B is not set (or is empty); it must hold the API key of model 'server-b'"
        )
        monkeypatch.setenv("KEY_B", "")
        with pytest.raises(ConfigurationError, match="KEY_B is not set"):
            config.build()
        assert a.requests == b.requests == []
    assert KEY_A not in str(caught.value)


def test_the_key_never_shows(two_servers: Path, keys: None) -> None:
    config = load_config(two_servers)
    with config.build() as plan:
        shown = [
            repr(config),
            str(config),
            repr(plan),
            str(plan),
            repr(plan.models),
            json.dumps(config.public_dict()),
            json.dumps(plan.compare_kwargs(), default=repr),
        ]
    for text in shown:
        assert KEY_A not in text
        assert KEY_B not in text
    assert "KEY_A" in json.dumps(config.public_dict())  # the variable's name is kept


def test_public_dict_masks_credential_options_and_validates_back(folder: Path) -> None:
    text = (
        'prompts = "p.jsonl"\nout = "runs/x"\n[[models]]\nname = "chatgpt:gpt-4o-mini"\n'
        'options = { base_url = "http://127.0.0.1:9/v1", headers = { x-gateway = "tok-123" } }\n'
    )
    config = load_config(write(folder, "c.toml", text))
    public = config.public_dict()
    assert public["models"][0]["options"]["headers"] == {"x-gateway": "***"}
    assert "tok-123" not in repr(config.models[0])
    assert public["prompts"] == [str(folder / "p.jsonl")]
    assert public["out"] == str(folder / "runs" / "x")
    again = CompareConfig.model_validate(public)
    assert again.models[0].name == "chatgpt:gpt-4o-mini"
    assert again.settings.as_settings() == {}  # unset settings are not written out as nulls


def test_prompt_paths_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = tmp_path / "project"
    write(sub, "one.jsonl", '{"id": "a", "prompt": "x"}\n')
    write(sub, "more/two.jsonl", '{"id": "b", "prompt": "y"}\n')
    path = write(sub, "c.toml", 'prompts = ["one.jsonl", "more/two.jsonl"]\nmodels = ["fake"]\n')
    monkeypatch.chdir(tmp_path)  # somewhere else
    with load_config(path).build() as plan:
        assert [i.id for i in plan.prompts or ()] == ["a", "b"]
    write(sub, "more/two.jsonl", '{"id": "a", "prompt": "y"}\n')
    with pytest.raises(ConfigFileError, match=r"c\.toml:1: prompts: item id 'a' of .*two\.jsonl"):
        load_config(path).build()


def test_no_models_cannot_run(folder: Path) -> None:
    config = load_config(write(folder, "c.toml", "samples = 2\n"))  # a settings-only file
    with pytest.raises(ConfigFileError, match="no models: add"):
        config.build()


def test_generation_settings_have_the_fields_of_request() -> None:
    assert set(GenerationSettings.model_fields) == set(Request.model_fields) - {"messages"}
    assert GenerationSettings(stop="END").stop == ("END",)


# -- command-line flags over the file --------------------------------------------------------------


def test_flags_override_the_file(two_servers: Path, tmp_path: Path) -> None:
    base = load_config(two_servers)
    other = write(tmp_path, "elsewhere/q.jsonl", '{"id": "q", "prompt": "x"}\n')
    config = base.with_overrides(
        settings={"max_tokens": 8, "seed": 3},
        samples=4,
        concurrency=2,
        budget_usd=Decimal("0.25"),
        rpm=100,
        prompts=[other],
        out="report",
    )
    assert config.settings.as_settings() == {"max_tokens": 8, "seed": 3}
    # A flag is the last word: each model's own max_tokens and rpm are replaced too.
    assert config.models[1].settings.as_settings() == {"temperature": 0.5}
    assert config.models[1].rpm is None
    assert config.rpm == 100
    assert (config.samples, config.concurrency) == (4, 2)
    assert config.budget == Budget(max_usd=Decimal("0.25"))
    assert config.prompt_files() == [other]
    assert config.out_dir() == Path("report").absolute()
    assert base.samples == 1  # the original is unchanged
    assert config.models[0]._index == 0  # still reported at its line of the file


def test_a_budget_flag_keeps_the_files_other_limits(folder: Path) -> None:
    config = load_config(write(folder, "c.toml", "models = ['fake']\n[budget]\nmax_requests = 5\n"))
    merged = config.with_overrides(budget_usd=Decimal(1))
    assert merged.budget == Budget(max_usd=Decimal(1), max_requests=5)


def test_models_from_flags() -> None:
    models = models_from_flags(
        [
            ("-m", "a=chatgpt:gpt-4o-mini"),
            ("-O", "base_url=http://127.0.0.1:9/v1"),
            ("-O", "timeout=30"),
            ("-O", "api_key_env=KEY_A"),
            ("-O", "rpm=60"),
            ("-O", "settings.max_tokens=16"),
            ("-m", "fake"),
            ("-O", 'options.reply="42"'),
        ]
    )
    a, fake = models
    assert (a.label, a.name) == ("a", "chatgpt:gpt-4o-mini")
    assert a.options == {"base_url": "http://127.0.0.1:9/v1", "timeout": 30}
    assert (a.api_key_env, a.rpm) == ("KEY_A", 60)
    assert a.settings.as_settings() == {"max_tokens": 16}
    assert (fake.label, fake.name, fake.options) == (None, "fake", {"reply": "42"})


def test_a_flag_naming_a_file_model_takes_it(two_servers: Path) -> None:
    config = load_config(two_servers)
    (b,) = models_from_flags([("-m", "server-b")], config)
    assert b == config.models[1]
    assert b._index == 1
    (changed,) = models_from_flags([("-m", "server-b"), ("-O", "timeout=5")], config)
    assert changed.options == {"base_url": "http://127.0.0.1:10/v1", "timeout": 5}
    assert changed.api_key_env == "KEY_B"
    assert changed._index is None  # now partly from the command line


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ([("-O", "base_url=x")], "-O base_url=x: an option applies to the -m before it"),
        ([("-m", "fake"), ("-O", "base_url")], "-O base_url: an option is KEY=VALUE"),
        ([("-m", "fake"), ("-O", "label=x")], "-O label=x: give a label as -m LABEL=NAME"),
        ([("-m", "x=fake"), ("-O", "rpm=-1")], "-m x=fake: rpm: Input should be greater than 0"),
    ],
)
def test_bad_flags_are_one_line(flags: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(ConfigFileError) as caught:
        models_from_flags(flags)
    assert str(caught.value) == message or str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_backend_option_of_a_flag_model_is_checked_naming_the_model() -> None:
    config = CompareConfig(models=[ModelConfig(name="chatgpt", label="x", options={"base": 1})])
    with pytest.raises(ConfigFileError, match=r"^model 'x': options\.base: unknown key; did you"):
        config.check()


# -- the documented example ------------------------------------------------------------------------


def _blocks(lang: str) -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, re.S | re.M)


def test_the_documented_toml_example_is_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (toml,) = _blocks("toml")
    shutil.copy(ROOT / "examples" / "prompts.jsonl", tmp_path / "prompts.jsonl")
    path = write(tmp_path, "compare.toml", toml)
    monkeypatch.setenv("VLLM_API_KEY", "dummy-vllm-key")
    monkeypatch.setenv("OPENAI_API_KEY", "dummy-openai-key")
    config = load_config(path)
    assert [m.label for m in config.models] == ["llama-70b", "chatgpt"]
    assert config.models[0].options["base_url"] == "http://gpu-box:8000/v1"
    assert [m.api_key_env for m in config.models] == ["VLLM_API_KEY", "OPENAI_API_KEY"]
    assert config.out_dir() == tmp_path / "runs" / "llama-vs-chatgpt"
    with config.build() as plan:  # builds, sends nothing
        assert plan.overrides == {"chatgpt": {"max_tokens": 1024}}
        assert plan.limits == {
            "llama-70b": RateLimits(rpm=600),
            "chatgpt": RateLimits(rpm=500, tpm=200_000),
        }
        assert plan.prompts


def test_the_documented_yaml_example_says_the_same(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    (toml,) = _blocks("toml")
    (yaml_text,) = _blocks("yaml")
    config = load_config(write(tmp_path, "compare.toml", toml))
    from_yaml = load_config(write(tmp_path, "compare.yaml", yaml_text))
    assert [m.label for m in from_yaml.models] == ["llama-70b", "chatgpt"]
    assert from_yaml.models[0].options == config.models[0].options
    assert from_yaml.settings == config.settings


# -- through the real command ----------------------------------------------------------------------


def _authorization(server: OpenAIServer) -> set[str]:
    return {r.headers.get("authorization", "") for r in server.chat_requests}


def test_two_chatgpt_models_on_two_servers_are_both_compared(folder: Path) -> None:
    with OpenAIServer() as a, OpenAIServer() as b:
        path = write(folder, "compare.toml", TWO_SERVERS.format(url_a=a.url, url_b=b.url))
        out = run("compare", "-c", str(path), "--no-progress", KEY_A=KEY_A, KEY_B=KEY_B)
        assert out.returncode == 0, out.stderr
        sent_a, sent_b = a.chat_requests, b.chat_requests
    assert len(sent_a) == len(sent_b) == 2  # each server got its own model's two prompts only
    assert _authorization(a) == {f"Bearer {KEY_A}"}
    assert _authorization(b) == {f"Bearer {KEY_B}"}
    assert {r.body["max_tokens"] for r in sent_a} == {64}  # the shared setting
    assert {r.body["max_tokens"] for r in sent_b} == {32}  # server-b's own
    assert "server-a" in out.stdout
    assert "server-b" in out.stdout
    assert KEY_A not in out.stdout + out.stderr
    assert KEY_B not in out.stdout + out.stderr


def test_the_same_without_a_file_with_m_and_o(folder: Path) -> None:
    with OpenAIServer() as a, OpenAIServer() as b:
        out = run(
            "compare",
            str(folder / "p.jsonl"),
            "-m",
            "server-a=chatgpt:gpt-4o-mini",
            "-O",
            f"base_url={a.url}",
            "-O",
            "api_key_env=KEY_A",
            "-O",
            "timeout=30",
            "--max-tokens",
            "9",
            "-m",
            "server-b=chatgpt:gpt-4o-mini",
            "-O",
            f"base_url={b.url}",
            "-O",
            "api_key_env=KEY_B",
            "--no-progress",
            KEY_A=KEY_A,
            KEY_B=KEY_B,
        )
        assert out.returncode == 0, out.stderr
        sent_a, sent_b = a.chat_requests, b.chat_requests
    assert len(sent_a) == len(sent_b) == 2
    assert _authorization(a) == {f"Bearer {KEY_A}"}
    assert _authorization(b) == {f"Bearer {KEY_B}"}
    assert {r.body["max_tokens"] for r in sent_a + sent_b} == {9}


def test_flags_override_the_file_through_the_command(folder: Path) -> None:
    with OpenAIServer() as a, OpenAIServer() as b:
        path = write(folder, "compare.toml", TWO_SERVERS.format(url_a=a.url, url_b=b.url))
        out = run(
            "compare",
            "-c",
            str(path),
            "-m",
            "server-b",  # only this model of the file
            "--samples",
            "2",
            "--max-tokens",
            "7",
            "--no-progress",
            KEY_B=KEY_B,  # KEY_A is not needed: server-a does not run
        )
        assert out.returncode == 0, out.stderr
        sent_a, sent_b = a.chat_requests, b.chat_requests
    assert sent_a == []
    assert len(sent_b) == 4  # 2 items x 2 samples
    assert {r.body["max_tokens"] for r in sent_b} == {7}  # the flag beats the model's own 32
    assert {r.body["temperature"] for r in sent_b} == {0.5}  # what the flags leave stays


def test_a_misspelled_key_stops_the_command_before_anything_is_sent(folder: Path) -> None:
    with OpenAIServer() as a, OpenAIServer() as b:
        text = TWO_SERVERS.format(url_a=a.url, url_b=b.url).replace("rpm =", "rpn =")
        path = write(folder, "compare.toml", text)
        out = run("compare", "-c", str(path), "--no-progress", KEY_A=KEY_A, KEY_B=KEY_B)
        assert a.requests == b.requests == []
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        f"llmcompare: error: {path}:{line_of(text, 'rpn')}: models[1].rpn: unknown key; "
        "did you mean 'rpm'?"
    ]
    assert out.stdout == ""


def test_a_missing_key_variable_stops_the_command_before_anything_is_sent(folder: Path) -> None:
    with OpenAIServer() as a, OpenAIServer() as b:
        path = write(folder, "compare.toml", TWO_SERVERS.format(url_a=a.url, url_b=b.url))
        out = run("compare", "-c", str(path), "--no-progress", KEY_A=KEY_A)
        assert a.requests == b.requests == []
    assert out.returncode == 2
    (line,) = out.stderr.splitlines()
    assert "models[1].api_key_env: the environment variable KEY_B is not set" in line
    assert KEY_A not in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-O", "base_url=http://x", "-m", "fake"), "-O base_url=http://x: an option applies"),
        (("-m", "fake", "-O", "oops"), "-O oops: an option is KEY=VALUE"),
        (("-m", "fake", "-O", "colour=red"), "model 'fake': options.colour: unknown key"),
    ],
)
def test_a_bad_option_flag_is_one_line_and_exit_2(
    folder: Path, args: tuple[str, ...], message: str
) -> None:
    out = run("compare", str(folder / "p.jsonl"), *args, "--no-progress")
    assert out.returncode == 2
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"llmcompare: error: {message}"), line


def test_credentials_in_a_url_never_reach_the_public_config() -> None:
    config = CompareConfig(
        models=[
            ModelConfig(
                label="gw",
                name="chatgpt:m",
                options={"base_url": "https://bob:s3cret@gw.example/v1?api-key=abc"},
            )
        ]
    )
    text = json.dumps(config.public_dict())
    assert "s3cret" not in text
    assert "abc" not in text
    assert "gw.example/v1" in text


# issue 22, item 16
@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.toml", "samples = 1\nx = " + "[" * 100_000 + "]" * 100_000 + "\n"),
        ("deep.yaml", "samples: 1\nx: " + "[" * 100_000 + "]" * 100_000 + "\n"),
    ],
)
def test_a_value_nested_too_deeply_is_one_line(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.write_text(text)
    with pytest.raises(ConfigFileError, match="nested too deeply") as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")


# issue 22, item 16
def test_an_option_value_nested_too_deeply_is_one_line() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ConfigFileError, match="nested too deeply") as info:
        models_from_flags([("-m", "fake"), ("-O", f"x={deep}")])
    assert str(info.value).startswith("-O x=...: ")


# issue 22, item 15
@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("models: [fake]\nsamples: yes\n", "samples", 2),
        ("models: [fake]\nconcurrency: on\n", "concurrency", 2),
        ("models: [fake]\nrpm: true\n", "rpm", 2),
        ("models: [fake]\nsettings:\n  max_tokens: yes\n", "settings.max_tokens", 3),
        ("models:\n  - name: fake\n    tpm: no\n", "models[0].tpm", 3),
    ],
)
def test_a_yaml_boolean_is_not_a_number(folder: Path, text: str, key: str, line: int) -> None:
    pytest.importorskip("yaml")
    path = write(folder, "c.yaml", text)
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:{line}: {key}: "), str(caught.value)
    assert "boolean" in str(caught.value)


# issue 22, item 15
def test_a_toml_boolean_is_not_a_number(folder: Path) -> None:
    path = write(folder, "c.toml", 'models = ["fake"]\nsamples = true\n')
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:2: samples: "), str(caught.value)


# issue 22, item 15
def test_a_yaml_key_given_twice_is_refused_with_both_lines(folder: Path) -> None:
    pytest.importorskip("yaml")
    text = "models: [fake]\nsamples: 1\nconcurrency: 4\nsamples: 3\n"
    path = write(folder, "c.yaml", text)
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}:4: samples: given twice (first at line 2): keep one"
    nested = "models:\n  - name: fake\n    rpm: 1\n    rpm: 2\n"
    with pytest.raises(ConfigFileError) as caught:
        load_config(write(folder, "d.yaml", nested))
    assert str(caught.value) == (
        f"{folder / 'd.yaml'}:4: models[0].rpm: given twice (first at line 3): keep one"
    )
    inline = "models: [fake]\nsettings: {max_tokens: 5, max_tokens: 6}\n"
    with pytest.raises(ConfigFileError) as caught:
        load_config(write(folder, "e.yaml", inline))
    assert str(caught.value) == (
        f"{folder / 'e.yaml'}:2: settings.max_tokens: given twice (first at line 2): keep one"
    )


# issue 22, item 15
def test_a_toml_file_with_a_byte_order_mark_is_read(folder: Path) -> None:
    path = folder / "bom.toml"
    path.write_bytes(b'\xef\xbb\xbfmodels = ["fake"]\nsamples = 2\n\nsampels = 1\n')
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    # Read, and its lines counted as written: the misspelled key is at line 4.
    assert str(caught.value).startswith(f"{path}:4: sampels: unknown key")
    path.write_bytes(b'\xef\xbb\xbfmodels = ["fake"]\nsamples = 2\n')
    assert load_config(path).samples == 2


# issue 22, item 19
def test_an_unknown_field_is_refused_naming_the_fields_not_the_config_keys() -> None:
    with pytest.raises(ConfigFileError) as caught:
        CompareConfig().with_overrides(fields={"answer": "answer"})
    assert str(caught.value) == (
        "command line: fields.answer: unknown key; the keys here are prompt, template, "
        "reference, id, system, tags"
    )
    with pytest.raises(ConfigFileError) as caught:
        CompareConfig().with_overrides(settings={"max_token": 5})
    assert str(caught.value) == (
        "command line: settings.max_token: unknown key; did you mean 'max_tokens'?"
    )


# issue 22, item 19
def test_an_unknown_field_flag_is_one_line(folder: Path) -> None:
    done = run(
        "compare",
        str(folder / "p.jsonl"),
        "-m",
        "fake",
        "--field",
        "answer=answer",
        "--no-progress",
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "llmcompare: error: command line: fields.answer: unknown key; the keys here are prompt, "
        "template, reference, id, system, tags"
    ]


# issue 22, item 17
def test_a_rate_limit_under_one_a_day_is_refused_at_its_line(folder: Path) -> None:
    path = write(folder, "c.toml", 'models = [{ name = "fake", rpm = 1e-9 }]\ntpm = 1e-12\n')
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    assert str(caught.value).splitlines() == [
        f"{path}:1: models[0].rpm: rpm=1e-09 is less than one a day: a request would wait longer "
        "than a day; give at least 0.0007 (about one a day), or no limit",
        f"{path}:2: tpm: tpm=1e-12 is less than one a day: a request would wait longer than a "
        "day; give at least 0.0007 (about one a day), or no limit",
    ]
    done = run("compare", "-c", str(path))
    assert done.returncode == 2, done.stderr
    # One marked line per problem, as the file's problems are listed.
    lines = done.stderr.splitlines()
    assert [line.startswith(f"llmcompare: error: {path}:") for line in lines] == [True, True]
