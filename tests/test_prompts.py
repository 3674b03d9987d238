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


def test_csv_with_an_excel_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(
        b"\xef\xbb\xbfid,prompt,reference\r\na,2+2?,4\r\nb,Capital of France?,Paris\r\n"
    )
    items = load_prompts(path)
    assert [i.id for i in items] == ["a", "b"]
    assert [i.reference for i in items] == ["4", "Paris"]


def test_csv_row_with_more_fields_than_the_header_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "extra.csv"
    path.write_text("id,prompt,reference\na,x,1\nb,Paris, France,Paris\n")
    with pytest.raises(PromptFileError, match="row has 4 fields but the header has 3") as info:
        load_prompts(path)
    assert info.value.line == 3
    assert str(info.value).startswith(f"{path}:3: ")
    assert "Keys should be strings" not in str(info.value)


def test_csv_row_with_fewer_fields_is_fine_while_only_optional_ones_are_missing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "short.csv"
    path.write_text("id,prompt,reference,tags\na,x\nb,y,2,m\n")
    items = load_prompts(path)
    assert items[0] == PromptItem(id="a", prompt="x")
    assert items[1] == PromptItem(id="b", prompt="y", reference="2", tags=("m",))


def test_csv_row_missing_its_prompt_says_it_is_short(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("id,prompt,reference\na,x,1\nb\n")
    with pytest.raises(PromptFileError, match="row has 1 field but the header has 3") as info:
        load_prompts(path)
    assert info.value.line == 3
    assert "exactly one of" in str(info.value)


def test_csv_with_a_repeated_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("id,prompt,prompt\na,x,y\n")
    with pytest.raises(PromptFileError, match=r"repeated column\(s\) \['prompt'\]") as info:
        load_prompts(path)
    assert info.value.line == 1


# issue 22, item 16
@pytest.mark.parametrize("suffix", [".jsonl", ".yaml"])
def test_a_line_nested_too_deeply_is_refused_naming_its_line(tmp_path: Path, suffix: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    path = tmp_path / f"deep{suffix}"
    if suffix == ".jsonl":
        path.write_text(f'{{"id": "a", "prompt": "x"}}\n{{"id": "b", "prompt": {deep}}}\n')
    else:
        path.write_text(f"- id: a\n  prompt: x\n- id: b\n  prompt: {deep}\n")
    with pytest.raises(PromptFileError, match="nested too deeply") as info:
        load_prompts(path)
    assert str(info.value).startswith(f"{path}:")
    if suffix == ".jsonl":
        assert info.value.line == 2
