"""The Ray executor on a real Ray cluster (one for the whole session) with the embedded Llama.

The answers of 2 actors are compared token for token with this process's answers to the same
requests in the same batches (greedy decoding), and an actor killed mid-run loses nothing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from llmcompare import Request, compare, get_model
from llmcompare.errors import ConfigurationError
from llmcompare.executors import Executor, RayExecutor
from llmcompare.types import Result

if TYPE_CHECKING:
    from llmcompare.backends.llama import LlamaModel

PROMPTS = ["Name a colour.", "Say hello.", "Count to three.", "Name a fruit."]


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """One local Ray cluster for every Ray test (starting one takes seconds)."""
    if importlib.util.find_spec("ray") is None:
        reason = 'ray is not installed (pip install "llmcompare[ray]")'
        if os.environ.get("CI"):
            pytest.fail(f"the Ray tests cannot run in CI: {reason}")
        pytest.skip(f"SKIPPED LOUDLY: {reason}")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_bad_settings_are_refused_before_anything_starts() -> None:
    with pytest.raises(ConfigurationError, match="workers"):
        RayExecutor(workers=0)
    assert isinstance(RayExecutor(), Executor)


def test_a_missing_ray_is_refused_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from llmcompare.config import ExecutorConfig

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    with pytest.raises(ConfigurationError, match=r"pip install 'llmcompare\[ray\]'"):
        RayExecutor(workers=2)
    with pytest.raises(ConfigurationError, match=r"pip install 'llmcompare\[ray\]'"):
        ExecutorConfig(kind="ray", workers=2).build()


def test_a_budget_with_a_ray_run_model_is_refused_before_anything_is_sent(
    llama_cache: Path, tmp_path: Path
) -> None:
    from helpers import openai_server as srv
    from llmcompare.cost import Budget

    with srv.OpenAIServer() as server:
        api = get_model("chatgpt:gpt-4o-mini", base_url=server.url, api_key="sk-x")
        local = get_model("llama", cache_dir=llama_cache)
        with pytest.raises(ConfigurationError, match=r"budget cannot be enforced.*llama"):
            compare(
                {"gpt": api, "llama": local},
                PROMPTS,
                executor=RayExecutor(workers=2),
                budget=Budget(max_usd=1),
                out=tmp_path / "run",
                max_tokens=4,
            )
        assert server.requests == []
    assert not (tmp_path / "run").exists()


def test_ray_failures_of_the_worker_not_the_model_rerun_the_shard(ray_cluster: Any) -> None:
    from llmcompare.executors._ray import _lost_worker

    errors = ray_cluster.exceptions
    # What Ray raises for a worker killed for memory, a dead node, a crashed worker process, an
    # object lost with its node (ray/_private/serialization.py), and a killed actor.
    lost = [
        errors.OutOfMemoryError("killed for memory"),
        errors.NodeDiedError("node died"),
        errors.WorkerCrashedError(),
        errors.ObjectLostError("ab" * 14, b"", ""),
        errors.ActorDiedError(),
    ]
    assert all(_lost_worker(ray_cluster, e) for e in lost)
    # The model's own failure is the requests' answer, not a lost worker.
    failed = errors.RayTaskError("run", "Traceback ...", ValueError("bad"))
    assert not _lost_worker(ray_cluster, failed)
    assert not _lost_worker(ray_cluster, ValueError("bad"))


def test_workers_the_cluster_cannot_place_are_refused(ray_cluster: Any, llama_cache: Path) -> None:
    model = get_model("llama", cache_dir=llama_cache)
    executor = RayExecutor(workers=1, num_gpus_per_worker=1)  # the test cluster has no GPU
    with pytest.raises(ConfigurationError, match="need 1 GPU, the Ray cluster has 0"):
        executor.run(model, [Request.of("hi", max_tokens=2)], batch_size=1, on_result=print)
    with pytest.raises(ConfigurationError, match="need 3 CPU, the Ray cluster has 2"):
        RayExecutor(workers=3).run(
            model, [Request.of("hi", max_tokens=2)], batch_size=1, on_result=print
        )


def test_only_registry_built_local_models_go_to_ray(llama: LlamaModel) -> None:
    executor = RayExecutor()
    api = get_model("chatgpt:gpt-4o-mini", base_url="http://127.0.0.1:9/v1")
    assert not executor.handles(api)  # API models stay in the driver
    with pytest.warns(RuntimeWarning, match="built by hand"):
        assert not executor.handles(llama)  # LlamaModel(...): no registry spec to rebuild it


def test_two_actors_answer_token_for_token_as_one_process(
    ray_cluster: Any, llama: LlamaModel, llama_cache: Path, tmp_path: Path
) -> None:
    model = get_model("llama", cache_dir=llama_cache)
    executor = RayExecutor(workers=2)
    assert executor.handles(model)
    ray_run = compare(
        {"llama": model},
        PROMPTS,
        executor=executor,
        concurrency=2,
        max_tokens=8,
        out=tmp_path / "run",
        cache=False,
    )
    # This process, the same requests in the same batches of 2.
    requests = [Request.of(p, max_tokens=8, temperature=0.0) for p in PROMPTS]
    here = [*llama.generate_batch(requests[:2]), *llama.generate_batch(requests[2:])]
    rows = [r.completion for r in ray_run.rows]
    assert all(c is not None for c in rows)
    assert [c.text for c in rows if c] == [r.unwrap().text for r in here]
    # Token counts (how many prompt tokens each process's prefix cache supplied depends on
    # what that process ran before).
    assert [(c.usage.input_tokens, c.usage.output_tokens) for c in rows if c] == [
        (u.input_tokens, u.output_tokens) for u in (r.unwrap().usage for r in here)
    ]
    # Each worker's share is in the record, and the local cost is the sum over the rows.
    assert {c.worker for c in rows if c} == {"ray-0", "ray-1"}
    stats = executor.stats[model.id]
    assert sum(s.requests for s in stats) == len(PROMPTS)
    assert sum(s.compute_s for s in stats) == pytest.approx(
        sum(c.compute_s or 0.0 for c in rows if c)
    )
    assert all(s.device == "cpu" for s in stats)
    (summary,) = ray_run.summaries
    assert summary.cost.usd == sum(r.cost.usd for r in ray_run.rows if r.cost)
    # Written to the run folder as they arrived: the same comparison again sends nothing.
    again = compare(
        {"llama": model},
        PROMPTS,
        executor=executor,
        concurrency=2,
        max_tokens=8,
        out=tmp_path / "run",
        cache=False,
    )
    assert [r.completion.text for r in again.rows if r.completion] == [c.text for c in rows if c]


def test_an_actor_killed_mid_run_loses_nothing(
    ray_cluster: Any, llama: LlamaModel, llama_cache: Path
) -> None:
    model = get_model("llama", cache_dir=llama_cache)
    executor = RayExecutor(workers=2)
    requests = [Request.of(p, max_tokens=6, temperature=0.0) for p in [*PROMPTS, "Say bye."]]
    seen: list[Result] = []
    ready_at: list[int] = []  # answers seen when the run said every worker was ready

    def arrived(result: Result) -> None:
        if not seen:
            # Kill the actor that did not give this first answer: it is busy or about to be.
            assert result.completion is not None
            victim = 1 if result.completion.worker == "ray-0" else 0
            ray_cluster.kill(executor.actors[victim])
        seen.append(result)

    executor.run(
        model,
        requests,
        batch_size=1,
        on_result=arrived,
        on_ready=lambda: ready_at.append(len(seen)),
    )
    assert ready_at == [0]  # once, before the first answer: the clock starts after loading
    assert sorted(r.index for r in seen) == list(range(len(requests)))  # each exactly once
    assert all(r.ok for r in seen)
    by_index = {r.index: r.unwrap() for r in seen}
    assert [by_index[i].text for i in range(len(requests))] == [
        llama.generate(r).text for r in requests
    ]
    stats = executor.stats[model.id]
    assert [s.alive for s in stats].count(False) == 1
    assert sum(s.requests for s in stats) == len(requests)


def test_config_file_and_cli_choose_the_executor(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from llmcompare.cli import main
    from llmcompare.config import ConfigFileError, ExecutorConfig, load_config

    path = tmp_path / "c.toml"
    path.write_text(
        'executor = { kind = "ray", workers = 4 }\n'
        "[[models]]\n"
        'name = "chatgpt:gpt-4o-mini"\n'
        'options = { base_url = "http://127.0.0.1:9/v1", batch = true }\n',
        encoding="utf-8",
    )
    with load_config(path).build() as plan:
        executor = plan.compare_kwargs()["executor"]
        (model,) = plan.models.values()
        assert model.batch_api is True  # type: ignore[attr-defined]  # the -O batch=true path
    assert isinstance(executor, RayExecutor)
    assert executor.workers == 4
    flagged = load_config(path).with_overrides(executor=ExecutorConfig(kind="ray", workers=3))
    assert flagged.executor is not None
    assert flagged.executor.workers == 3
    assert ExecutorConfig().build() is None  # kind "local": this process
    path.write_text('executor = { kind = "ray", workers = 0 }\n', encoding="utf-8")
    with pytest.raises(ConfigFileError, match="workers"):
        load_config(path)
    shown = CliRunner().invoke(main, ["compare", "--help"]).output
    assert "--ray-workers" in shown
    assert "--ray-address" in shown


def _stat(pid: int) -> tuple[int, str, str, str] | None:
    """``(parent, state, start time, name)`` of a process from /proc, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], fields[19], name


def _descendants(root: int) -> dict[tuple[int, str], str]:
    """Every process below ``root`` (Ray's raylet, GCS, workers): ``(pid, start) -> name``."""
    children: dict[int, list[tuple[int, str, str]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parent, _, start, name = stat
            children.setdefault(parent, []).append((int(entry.name), start, name))
    found: dict[tuple[int, str], str] = {}
    todo = [root]
    while todo:
        for pid, start, name in children.get(todo.pop(), []):
            found[(pid, start)] = name
            todo.append(pid)
    return found


def _alive(process: tuple[int, str]) -> bool:
    stat = _stat(process[0])
    return stat is not None and stat[2] == process[1] and stat[1] != "Z"


# issue 22, item 24: Ctrl-C leaves at once (os._exit), and no Ray process of the run stays behind.
def test_ctrl_c_on_a_ray_run_leaves_no_ray_process_of_it_alive(
    llama: LlamaModel, llama_cache: Path, tmp_path: Path
) -> None:
    import json
    import signal
    import subprocess
    import sys
    import time

    if importlib.util.find_spec("ray") is None:
        pytest.skip('ray is not installed (pip install "llmcompare[ray]")')
    if not Path("/proc/self/stat").exists():
        pytest.skip("finding a run's processes reads /proc (Linux)")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "prompt": f"Write a long story number {i} about a cat."})
            + "\n"
            for i in range(40)
        ),
        encoding="utf-8",
    )
    out = tmp_path / "run"
    command = [
        *(sys.executable, "-m", "llmcompare", "compare", str(prompts)),
        *("-m", "llama", "-O", f"cache_dir={llama_cache}", "--max-tokens", "64"),
        *("--ray-workers", "2", "--concurrency", "2", "--out", str(out)),
    ]
    env = {**os.environ, "LLMCOMPARE_LOAD_PLUGINS": "", "OMP_NUM_THREADS": "1"}
    seen: dict[tuple[int, str], str] = {}
    with (tmp_path / "err.txt").open("w") as err:
        cli = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            deadline = time.monotonic() + 600
            answers = out / "answers.jsonl"
            # Running: both actors built their model and answers are arriving.
            while not (answers.exists() and answers.read_text(encoding="utf-8").strip()):
                assert cli.poll() is None, (tmp_path / "err.txt").read_text()[-3000:]
                assert time.monotonic() < deadline, "the Ray run never answered"
                seen.update(_descendants(cli.pid))
                time.sleep(0.5)
            seen.update(_descendants(cli.pid))
            assert "raylet" in seen.values()
            cli.send_signal(signal.SIGINT)
            assert cli.wait(timeout=120) == 130
            deadline = time.monotonic() + 20
            while (alive := [seen[p] for p in seen if _alive(p)]) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert alive == []
        finally:
            if cli.poll() is None:
                cli.kill()
            for pid, _ in (p for p in seen if _alive(p)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
