from pathlib import Path

import pytest

from llmcompare import Message
from llmcompare.prompts import PromptFileError, PromptItem, builtin_suite, load_prompts
from llmcompare.scorers import scorer_from_name


def test_builtin_suite_is_valid_and_varied() -> None:
    items = builtin_suite()
    assert len(items) == 20
    assert len({i.id for i in items}) == 20
    tags = {t for i in items for t in i.tags}
    assert {"facts", "arithmetic", "format", "json", "summarising"} <= tags
    for item in items:
        for spec in item.scorers or ():
            scorer_from_name(spec)  # every named scorer exists


def test_jsonl_csv_and_yaml_load_the_same_items(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text(
        '{"id": "a", "prompt": "2+2?", "reference": "4", "scorers": ["numeric"], "tags": ["m"]}\n'
        "\n"
        '{"id": "b", "messages": [{"role": "user", "content": "hi"}]}\n'
    )
    (tmp_path / "p.csv").write_text("id,prompt,reference,scorers,tags\na,2+2?,4,numeric,m\n")
    (tmp_path / "p.yaml").write_text(
        "prompts:\n  - id: a\n    prompt: 2+2?\n    reference: '4'\n"
        "    scorers: [numeric]\n    tags: [m]\n"
    )
    jsonl = load_prompts(tmp_path / "p.jsonl")
    assert jsonl[1].conversation() == (Message.user("hi"),)
    assert load_prompts(tmp_path / "p.csv") == jsonl[:1]
    assert load_prompts(tmp_path / "p.yaml") == jsonl[:1]


@pytest.mark.parametrize(
    ("name", "content", "line", "message"),
    [
        ("bad.jsonl", '{"id": "a", "prompt": "x"}\n{"id": "b", "prompt": \n', 2, "invalid JSON"),
        ("bad.jsonl", '{"id": "a", "prompt": "x"}\n\n{"id": "b"}\n', 3, "exactly one of"),
        ("bad.jsonl", '{"id": "a", "prompt": "x", "colour": 1}\n', 1, "colour"),
        ("bad.jsonl", '{"id": "a", "prompt": "x"}\n{"id": "a", "prompt": "y"}\n', 2, "duplicate"),
        ("bad.csv", "id,prompt,extra\na,x,1\n", 1, "unknown column"),
        ("bad.csv", "id,prompt\na,x\nb,\n", 3, "exactly one of"),
        ("bad.yaml", "- id: a\n\tprompt: x\n", 2, "invalid YAML"),
        ("bad.yaml", "- id: a\n  prompt: x\n- id: b\n", 2, "exactly one of"),
    ],
)
def test_bad_files_name_the_line(
    tmp_path: Path, name: str, content: str, line: int, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(PromptFileError, match=message) as info:
        load_prompts(path)
    assert info.value.line == line
    assert f"{path}:{line}:" in str(info.value)


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(PromptFileError, match="no such file"):
        load_prompts(tmp_path / "nope.jsonl")
    (tmp_path / "p.txt").write_text("x")
    with pytest.raises(PromptFileError, match="unknown format"):
        load_prompts(tmp_path / "p.txt")


def test_items_from_strings_get_ids() -> None:
    assert PromptItem.of("hello", index=0).id == "item-1"
    assert PromptItem.of({"prompt": "x"}, index=4).id == "item-5"
