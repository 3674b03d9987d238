"""The `llmcompare` command, through its real entry point in a subprocess."""

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.cli import EXE, cli_env, run
from helpers.openai_server import OpenAIServer


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"id": "a", "prompt": "say yes", "reference": "yes", "scorers": ["contains"]}\n'
        '{"id": "b", "prompt": "say 42", "reference": "42", "scorers": ["numeric"]}\n'
    )
    return path


def test_the_entry_point_is_installed() -> None:
    if not EXE and os.environ.get("CI"):
        pytest.fail("the llmcompare command is not on PATH in CI")
    out = run("--version")
    assert out.returncode == 0
    assert "version" in out.stdout


def test_python_dash_m_is_the_same_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "llmcompare", "models"], capture_output=True, text=True, check=True
    )
    assert "fake" in out.stdout
    assert "chatgpt" in out.stdout


def test_models_and_plugins() -> None:
    models = run("models")
    assert models.returncode == 0
    assert "chatgpt" in models.stdout
    plugins = run("plugins")
    assert plugins.returncode == 0
    assert "built-in" in plugins.stdout
    assert "llmcompare" in plugins.stdout


def test_compare_over_http_writes_reports(prompts: Path, tmp_path: Path) -> None:
    with OpenAIServer() as server:
        out = run(
            "compare",
            str(prompts),
            "-m",
            "chatgpt:gpt-4o-mini",
            "-m",
            "fake",
            "--out",
            str(tmp_path / "out"),
            "--format",
            "json",
            "--format",
            "csv",
            "--no-progress",
            OPENAI_BASE_URL=server.url,
        )
        assert out.returncode == 0, out.stderr
        sent = [r.body for r in server.chat_requests]
    assert "chatgpt:gpt-4o-mini" in out.stdout
    assert "fake:echo" in out.stdout
    assert (tmp_path / "out" / "comparison.json").exists()
    assert (tmp_path / "out" / "comparison.csv").exists()
    assert {b["messages"][-1]["content"] for b in sent} == {"say yes", "say 42"}
    assert all(b["temperature"] == 0.0 for b in sent)


def test_failed_requests_exit_1(prompts: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on: every request fails to connect
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = run(
        "compare",
        str(prompts),
        "-m",
        "chatgpt:gpt-4o-mini",
        "--no-progress",
        OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1",
        LLMCOMPARE_RETRY_NO_WAIT="1",
    )
    assert out.returncode == 1, out.stderr
    assert "0/2" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("compare", "{bad}", "-m", "fake"), "bad.jsonl:2"),
        (("compare", "{missing}", "-m", "fake"), "no such file"),
        (("compare", "-m", "lama"), "did you mean 'llama'"),
        (("compare", "-m", "fake", "--temperature", "3"), "temperature"),
        (("generate", "nope", "hi"), "unknown model 'nope'"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "x"}\n{"id": "b"}\n')
    paths = {"bad": str(bad), "missing": str(tmp_path / "missing.jsonl")}
    out = run(*(a.format(**paths) for a in args))
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_unconfigured_chatgpt_is_refused_with_its_hint() -> None:
    out = run("generate", "chatgpt", "hi")
    assert out.returncode == 2
    assert "OPENAI_API_KEY" in out.stderr
    assert "Traceback" not in out.stderr


def test_generate_streams_then_prints_usage_and_cost() -> None:
    out = run("generate", "fake", "hello there")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hello there"
    assert "2 in / 2 out tokens" in out.stderr
    assert "unpriced" in out.stderr


@pytest.mark.slow
def test_bare_compare_runs_the_embedded_llama_and_hints_at_chatgpt(
    llama_backend: None, tmp_path: Path
) -> None:
    out = run("compare", "--max-tokens", "16", "--no-progress", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "chatgpt: not configured; set OPENAI_API_KEY" in out.stdout
    assert "llama:smollm2-135m-instruct" in out.stdout
    assert "20/20" in out.stdout
    assert (tmp_path / "report.html").exists()


def test_budget_refuses_requests_before_sending(prompts: Path) -> None:
    with OpenAIServer() as server:
        out = run(
            "compare",
            str(prompts),
            "-m",
            "chatgpt:gpt-4o-mini",
            "--budget-usd",
            "0.0000001",
            "--no-progress",
            OPENAI_BASE_URL=server.url,
        )
        sent = len(server.chat_requests)
    assert out.returncode == 1, out.stderr
    assert "0/2" in out.stdout
    assert "BudgetExceeded" in out.stdout
    assert sent == 0  # refused before anything reached the server


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "'abc' is not a dollar amount."),
        ("-1", "'-1' is negative: a budget is 0 or more dollars."),
        ("NaN", "'NaN' is not a finite dollar amount."),
        ("inf", "'inf' is not a finite dollar amount."),
    ],
)
def test_a_bad_budget_is_a_usage_error_before_anything_runs(
    prompts: Path, value: str, message: str
) -> None:
    out = run("compare", str(prompts), "-m", "fake", "--budget-usd", value, "--no-progress")
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if "rror" in line]
    assert errors == [f"Error: Invalid value for '--budget-usd': {message}"]
    assert out.stdout == ""  # nothing ran: no hint, no report


def test_a_zero_budget_is_accepted_and_applied(prompts: Path) -> None:
    out = run("compare", str(prompts), "-m", "fake", "--budget-usd", "0", "--no-progress")
    # Not a usage error: the run happens and the (unpriced) fake model is refused by the budget.
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "BudgetExceeded" in out.stdout


CLI = [EXE] if EXE else [sys.executable, "-m", "llmcompare"]


def _many_prompts(path: Path, n: int, prompt: str) -> Path:
    """A prompt file of ``n`` items, ``q0000``, ``q0001``, ..., each asking ``prompt``."""
    path.write_text(
        "".join(json.dumps({"id": f"q{i:04d}", "prompt": prompt}) + "\n" for i in range(n))
    )
    return path


def _on_a_small_disk(
    disk: Path, steps: list[tuple[int, list[str]]]
) -> list[subprocess.CompletedProcess[str]]:
    """Run each ``(KiB, command)`` step in turn, with room for that much more in ``disk``.

    A real full filesystem, the kernel's own error: as root (this machine, CI), ``disk`` is a
    tmpfs in a private mount namespace, holding what the folder held and the room given, grown
    between the steps (ENOSPC); else each command runs under RLIMIT_FSIZE, no file larger than
    the room given (EFBIG, "File too large").
    """
    env = {**cli_env(), "COLUMNS": "160"}
    disk.mkdir(exist_ok=True)
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        import resource
        import signal

        def limited(kib: int) -> Callable[[], None]:
            def limit() -> None:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error, not a kill
                resource.setrlimit(resource.RLIMIT_FSIZE, (kib * 1024, kib * 1024))

            return limit

        return [
            subprocess.run(
                command,
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
                env=env,
                preexec_fn=limited(kib),
            )
            for kib, command in steps
        ]
    held = sum(-(-f.stat().st_size // 4096) * 4 for f in disk.rglob("*") if f.is_file())
    logs, kept = disk.parent / f"{disk.name}-logs", disk.parent / f"{disk.name}-before"
    logs.mkdir()
    where, before = shlex.quote(str(disk)), shlex.quote(str(kept))
    script = [f"cp -a {where} {before} || exit 97"]
    for n, (kib, command) in enumerate(steps):
        if n == 0:
            script.append(f"mount -t tmpfs -o size={held + kib}k tmpfs {where} || exit 99")
            script.append(f"cp -a {before}/. {where}/ || exit 97")
        else:
            script.append(f"mount -o remount,size={held + kib}k {where} || exit 98")
        out = f"{logs}/{n}"
        script.append(f"{shlex.join(command)} >{out}.out 2>{out}.err; echo $? >{out}.rc")
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", "\n".join(script)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return [
        subprocess.CompletedProcess(
            command,
            int((logs / f"{n}.rc").read_text()),
            (logs / f"{n}.out").read_text(),
            (logs / f"{n}.err").read_text(),
        )
        for n, (_, command) in enumerate(steps)
    ]


# issue 22, item 5
def test_a_full_disk_stops_the_run_in_one_line_with_its_own_exit_code_and_resumes(
    tmp_path: Path,
) -> None:
    items = _many_prompts(tmp_path / "many.jsonl", 300, "word " * 100)
    disk = tmp_path / "disk"
    args = [str(items), "-m", "fake", "--out", str(disk / "run"), "--no-progress", "--no-cache"]
    command = [*CLI, "compare", *args, "-f", "json"]
    # The first run fills a 64 KiB disk; then the disk has room and the same command resumes.
    full, resumed = _on_a_small_disk(disk, [(64, command), (16384, command)])
    assert full.returncode == 3, full.stderr
    assert "Traceback" not in full.stderr
    assert "Exception ignored" not in full.stderr
    errors = [line for line in full.stderr.splitlines() if line.startswith("llmcompare: error:")]
    assert len(errors) == 1, full.stderr
    assert errors[0].startswith("llmcompare: error: the disk is full (")
    # The line after it is the command that resumes, as typed.
    lines = full.stderr.splitlines()
    resume = lines[lines.index(errors[0]) + 1].strip()
    assert resume == shlex.join(["llmcompare", "compare", *args, "-f", "json"])
    # Room again: the same command finishes the run from what was saved.
    assert resumed.returncode == 0, resumed.stderr
    assert "300/300" in resumed.stdout


# issue 22, item 5 (the reports at the end)
def test_a_full_disk_while_writing_the_reports_exits_3_in_one_line_per_report(
    tmp_path: Path,
) -> None:
    items = _many_prompts(tmp_path / "many.jsonl", 200, "word " * 40)
    disk = tmp_path / "disk"
    first = run("compare", str(items), "-m", "fake", "--out", str(disk), "-f", "json")
    assert first.returncode == 0, first.stderr
    # Room for 64 KiB more: not for the page rendered from the record.
    (done,) = _on_a_small_disk(disk, [(64, [*CLI, "report", str(disk), "-f", "html"])])
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("llmcompare: error:")]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("llmcompare: error: could not write the html report: [Errno ")
    assert f"llmcompare report {disk} -f html" in done.stderr


# issue 22, item 16
def test_a_folder_where_answers_jsonl_should_be_is_one_line_and_exit_2(
    prompts: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    (out / "answers.jsonl").mkdir(parents=True)
    done = run("compare", str(prompts), "-m", "fake", "--out", str(out), "--no-progress")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"llmcompare: error: Is a directory: {out / 'answers.jsonl'}"
    )


# issue 22, item 13
@pytest.mark.parametrize(
    "value", ["max_token=5", "settings.temperature=0.5", "base_url=http://127.0.0.1:8000/v1"]
)
def test_an_out_folder_that_looks_like_an_option_is_refused_naming_dash_capital_o(
    prompts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    done = run("compare", str(prompts), "-m", "fake", "-o", value, "--no-progress")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"llmcompare: error: --out {value!r} looks like an option (KEY=VALUE): did you mean "
        f"-O {value}? (for a folder of that name, write ./{value})"
    ]
    assert done.stdout == ""
    assert list(tmp_path.iterdir()) == [prompts]  # no folder made, nothing run


def test_an_out_folder_with_an_equals_sign_written_as_a_path_is_a_folder(
    prompts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    done = run("compare", str(prompts), "-m", "fake", "-o", "./a=b", "-f", "json")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "a=b" / "comparison.json").is_file()


# issue 22, item 25
def test_compare_prints_a_sample_of_the_answers_and_the_path_of_all(tmp_path: Path) -> None:
    items = _many_prompts(tmp_path / "many.jsonl", 500, "question")
    out = tmp_path / "run"
    done = run("compare", str(items), "-m", "fake", "--out", str(out), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "500/500" in done.stdout
    assert len(done.stdout.splitlines()) < 100  # not 500 answers
    assert set(re.findall(r"q\d{4}", done.stdout)) == {f"q{i:04d}" for i in range(10)}
    assert f"10 of 500 items shown; every answer is in {out / 'comparison.csv'}" in done.stdout
    assert (out / "comparison.csv").read_text().count("\nq") == 500


def test_a_model_id_before_a_colon_prints_as_typed(prompts: Path, tmp_path: Path) -> None:
    # "fake:x: ..." holds ":x:", an emoji code to rich (❌): compare and report print the id.
    out = tmp_path / "run"
    done = run("compare", str(prompts), "-m", "fake:x", "--out", str(out), "-f", "json")
    again = run("report", str(out), "-f", "json")
    for said in (done, again):
        assert said.returncode == 0, said.stderr
        assert "\nfake:x: no price known for fake:x\n" in said.stdout
        assert "❌" not in said.stdout


# issue 22, item 26
def test_the_command_prints_each_warning_once_as_a_line_without_source(
    prompts: Path, tmp_path: Path
) -> None:
    # Two unpriced models and a run folder with a damaged line: a warning and a log warning.
    out = tmp_path / "run"
    first = run("compare", str(prompts), "-m", "a=fake", "-m", "b=fake", "--out", str(out))
    assert first.returncode == 0, first.stderr
    with (out / "answers.jsonl").open("a", encoding="utf-8") as f:
        f.write('{"model": "a", "item": "x"}\n')
    done = run("compare", str(prompts), "-m", "a=fake", "-m", "b=fake", "--out", str(out))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    unpriced = "llmcompare: warning: no price known for model 'fake:echo': its cost is reported as"
    assert len([line for line in lines if line.startswith(unpriced)]) == 1, done.stderr
    assert any(
        line.startswith("llmcompare: warning: ") and "damaged line skipped" in line
        for line in lines
    ), done.stderr
    assert "_tracker.py" not in done.stderr
    assert "Warning:" not in done.stderr  # no "file:line: UnpricedModelWarning:" source line
    assert all(line.startswith("llmcompare: ") for line in lines), done.stderr
