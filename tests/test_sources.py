"""Prompt sources: a local datasets split and a DataFrame give the JSONL's items."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

datasets = pytest.importorskip("datasets", reason="needs the datasets extra")
pd = pytest.importorskip("pandas", reason="needs the datasets extra")

from helpers.cli import run  # noqa: E402 - after the optional imports
from llmcompare import compare  # noqa: E402
from llmcompare.backends.fake import FunctionModel  # noqa: E402
from llmcompare.config import load_config  # noqa: E402
from llmcompare.errors import ConfigurationError  # noqa: E402
from llmcompare.prompts import load_prompts  # noqa: E402
from llmcompare.scorers import Numeric  # noqa: E402
from llmcompare.sources import load_source  # noqa: E402

ROWS = [
    {"id": "sum", "prompt": "What is 17 + 25?", "reference": "42", "tags": ["math"]},
    {
        "id": "capital",
        "prompt": "Capital of France?",
        "reference": "Paris",
        "tags": ["fact", "geo"],
    },
    {"id": "colour", "prompt": "Colour of the sky?", "reference": "blue", "tags": []},
]
# GSM8K's shape: a question, and a worked answer ending in "#### <number>".
GSM = [
    {
        "question": "Ann has 3 apples and buys 4 more. How many apples does she have?",
        "answer": "3 + 4 = 7\n#### 7",
    },
    {
        "question": "A box holds 6 eggs. How many eggs are in 5 boxes?",
        "answer": "6 * 5 = 30\n#### 30",
    },
]
TEMPLATE = "Question: {question}\nAnswer:"


@pytest.fixture
def jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return path


def test_a_dataset_a_saved_split_and_a_dataframe_give_the_jsonl_items(
    jsonl: Path, tmp_path: Path
) -> None:
    expected = load_prompts(jsonl)
    ds = datasets.Dataset.from_list(ROWS)
    assert load_source(ds) == expected
    assert load_source(pd.DataFrame(ROWS)) == expected
    datasets.DatasetDict({"train": ds.select([0]), "test": ds}).save_to_disk(tmp_path / "saved")
    assert load_source(tmp_path / "saved", split="test") == expected
    with pytest.raises(ConfigurationError, match=r"choose one of \['train', 'test'\]"):
        load_source(tmp_path / "saved")


def test_a_field_mapping_and_a_template() -> None:
    ds = datasets.Dataset.from_list(
        [{**g, "n": f"q{i}", "persona": "You are a maths tutor."} for i, g in enumerate(GSM)]
    )
    items = load_source(
        ds, fields={"template": TEMPLATE, "reference": "answer", "id": "n", "system": "persona"}
    )
    assert [i.id for i in items] == ["q0", "q1"]
    first = items[0].conversation()
    assert [m.role for m in first] == ["system", "user"]
    assert first[1].content == f"Question: {GSM[0]['question']}\nAnswer:"
    assert items[0].reference == "3 + 4 = 7\n#### 7"
    with pytest.raises(ConfigurationError, match=r"'questoin', which is not a column.*'question'"):
        load_source(ds, fields={"template": "Q: {questoin}"})
    with pytest.raises(ConfigurationError, match="no 'prompt' column"):
        load_source(ds)


def test_compare_takes_a_dataframe_and_scores_gsm8k_style_answers() -> None:
    items = load_source(pd.DataFrame(GSM), fields={"template": TEMPLATE, "reference": "answer"})
    model = FunctionModel(
        lambda r: "The answer is 7." if "apples" in r.messages[-1].content else "25"
    )
    result = compare([model], items, scorers=[Numeric()], progress=False, cache=False)
    assert result.summaries[0].mean_scores["numeric"] == 0.5


def test_config_and_cli_read_a_saved_dataset_with_fields(tmp_path: Path) -> None:
    datasets.Dataset.from_list(GSM).save_to_disk(tmp_path / "gsm")
    (tmp_path / "c.toml").write_text(
        'prompts = "gsm"\nscorers = ["numeric"]\nlimit = 1\n'
        '[fields]\ntemplate = "Q: {question}"\nreference = "answer"\n'
        '[[models]]\nname = "fake"\n',
        encoding="utf-8",
    )
    with load_config(tmp_path / "c.toml").build() as plan:
        items = plan.prompts
    assert items is not None
    assert [i.prompt for i in items] == [f"Q: {GSM[0]['question']}"]
    out = run(
        "compare",
        str(tmp_path / "gsm"),
        "-m",
        "fake",
        "--no-cache",
        "--field",
        "prompt=question",
        "--field",
        "reference=answer",
    )
    assert out.returncode == 0, out.stderr
    assert "2 common items" in out.stdout
    bad = run("compare", str(tmp_path / "gsm"), "-m", "fake", "--field", "prompt=questoin")
    assert bad.returncode == 2
    assert "'questoin', which is not a column" in bad.stderr


def test_a_jsonl_file_with_its_own_keys_and_a_scorer_on_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "gsm.jsonl"
    path.write_text("".join(json.dumps(g) + "\n" for g in GSM), encoding="utf-8")
    items = load_source(path, fields={"template": TEMPLATE, "reference": "answer"})
    assert [i.prompt for i in items] == [f"Question: {g['question']}\nAnswer:" for g in GSM]
    # The fake model echoes the prompt: its last number is the question's, never the answer.
    out = run(
        "compare",
        str(path),
        "--template",
        "{question} 7",
        "--field",
        "reference=answer",
        "--scorer",
        "numeric",
        "-m",
        "fake",
        "--no-cache",
    )
    assert out.returncode == 0, out.stderr
    assert "numeric" in out.stdout
    assert "0.50 [" in out.stdout  # the first item's echo ends in 7, the answer; the second not


def test_a_hub_id_without_network_says_so_in_one_line(tmp_path: Path) -> None:
    out = run(
        "compare",
        "hf:openai/gsm8k:main:test",
        "-m",
        "fake",
        "--field",
        "prompt=question",
        "--field",
        "reference=answer",
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf"),
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "Hugging Face Hub cannot be reached (HF_HUB_OFFLINE is set)" in lines[0]


@pytest.fixture
def gsm(tmp_path: Path) -> Path:
    path = tmp_path / "gsm.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in GSM), encoding="utf-8")
    return path


# issue 22, item 19
@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "Q: {question",
            "template 'Q: {question': the '{' at position 3 is never closed: end the field "
            "with '}', or write '{{' for a literal '{'",
        ),
        (
            "Q: question}?",
            "template 'Q: question}?': the '}' at position 11 closes no field: write '}}' for "
            "a literal '}'",
        ),
        (
            "Q: {question:{width}",
            "template 'Q: {question:{width}': the '{' at position 3 is never closed: end the "
            "field with '}', or write '{{' for a literal '{'",
        ),
    ],
)
def test_a_template_syntax_error_says_where_and_how_to_fix_it(
    gsm: Path, template: str, message: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_source(gsm, fields={"template": template})
    assert str(info.value) == f"fields.template: {message}"


# issue 22, item 19
@pytest.mark.parametrize(
    "template",
    [
        "Q: {question.__class__.__mro__}",
        "Q: {question[0]}",
        "Q: {question!r}",
        "Q: {0}",
        "Q: {}",
        "Q: {question:{answer.__class__}}",
    ],
)
def test_a_template_formats_plain_columns_only(gsm: Path, tmp_path: Path, template: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_source(gsm, fields={"template": template})
    assert "a template names columns only, as {question}" in str(info.value)
    # The command refuses it in one line, before anything runs.
    done = run("compare", str(gsm), "-m", "fake", "--template", template, "--no-progress")
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    errors = done.stderr.splitlines()
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("llmcompare: error: command line: fields.template: template ")
    # A plain field with a format spec still formats.
    (item,) = load_source(gsm, fields={"template": "{question:.9}|"}, limit=1)
    assert item.prompt == "Ann has 3|"
