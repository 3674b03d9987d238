"""Client overhead of llmcompare's API path against the raw openai SDK, on a loopback server.

Run: python benchmarks/api_overhead.py [--quick] [--rounds N] [--only sync,async,...] [--no-fail]

The benchmark starts the fast OpenAI-compatible test server
(``tests/helpers/openai_server.py``: asyncio, no per-request sleep, TCP_NODELAY, one write per
reply) in a subprocess and drives it from this
process. The primary metric is CLIENT time: CPU seconds of this process (``time.process_time``)
per request, because the server's work happens in the other process; wall time is printed too.

Contenders of one measurement alternate within each round (the order rotates from round to
round), and each line reports the median over rounds. The ratio is the median of the per-round
ratios to the raw SDK measured in the same round, which cancels most of the drift of a shared,
noisy machine.

Measurements and targets (issue 8):

- ``sync``: sequential ``generate`` vs ``OpenAI(max_retries=0).chat.completions.create``
  (<= 1.10x);
- ``async``: ``agenerate`` and ``llmcompare.batch.agenerate_many`` vs ``AsyncOpenAI`` with a
  semaphore, at concurrency 16 and 64 (<= 1.10x);
- ``stream``: ``astream`` vs the raw SDK with ``stream_options={"include_usage": True}``, 20
  chunks, concurrency 16 (<= 1.20x);
- ``helpers``: retry (``with_retry``), rate limits (never reached) and a ``CostTracker`` with a
  budget on the no-failure path vs the same call without them (<= 1.05x);
- ``import``: ``import llmcompare`` in fresh processes (<= 150 ms, with none of openai, torch or
  transformers loaded), plus ``get_model("chatgpt")`` and the first request (reported against
  ``import openai`` and a first raw request);
- ``soak``: 10,000 requests at concurrency 64 in a fresh process; resident memory after 1,000
  and after 10,000 requests (growth < 5%).

Exit status: 1 when a target is missed (0 with ``--no-fail``, which only reports), else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "tests" / "helpers" / "openai_server.py"
MODEL = "gpt-4o-mini"
API_KEY = "sk-bench-not-a-real-key"
CHUNKS = 20

TARGET_CALL = 1.10
TARGET_STREAM = 1.20
TARGET_HELPERS = 1.05
TARGET_IMPORT_MS = 150.0
TARGET_RSS_GROWTH = 0.05
HEAVY = ("openai", "torch", "transformers")


@dataclass(frozen=True)
class Plan:
    """How much work each measurement does."""

    rounds: int
    sync_n: int
    async_n: int
    stream_n: int
    import_runs: int
    soak_n: int
    soak_checkpoint: int


FULL = Plan(
    rounds=7,
    sync_n=300,
    async_n=640,
    stream_n=320,
    import_runs=7,
    soak_n=10_000,
    soak_checkpoint=1_000,
)
QUICK = Plan(
    rounds=3,
    sync_n=150,
    async_n=320,
    stream_n=160,
    import_runs=3,
    soak_n=3_000,
    soak_checkpoint=1_000,
)


def prompts(n: int) -> list[str]:
    # Distinct short prompts; the server echoes each back split into CHUNKS pieces.
    return [f"Benchmark prompt {i}: answer briefly, in a few words, about {i}." for i in range(n)]


# -- measurement ------------------------------------------------------------------------------


@dataclass
class Samples:
    """Per-round client and wall seconds per request of one contender."""

    client: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)


class Timer:
    """Client CPU time and wall time of a block, per request."""

    def __init__(self, samples: Samples, n: int) -> None:
        self.samples = samples
        self.n = n
        self.cpu = 0.0
        self.wall = 0.0

    def __enter__(self) -> Timer:
        self.cpu = time.process_time()
        self.wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.samples.client.append((time.process_time() - self.cpu) / self.n)
        self.samples.wall.append((time.perf_counter() - self.wall) / self.n)


@dataclass
class Report:
    """The printed lines and whether every target was met."""

    failed: list[str] = field(default_factory=list)

    def line(self, text: str, ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("  PASS" if ok else "  FAIL")
        print(text + verdict, flush=True)
        if ok is False:
            self.failed.append(text)

    def compare(
        self,
        section: str,
        contenders: dict[str, Samples],
        raw: str,
        target: float,
        versus: str = "raw",
    ) -> None:
        base = contenders[raw]
        self.line(f"{section:<22} {raw:<38} {_times(base)}")
        for name, samples in contenders.items():
            if name == raw:
                continue
            ratios = [s / b for s, b in zip(samples.client, base.client, strict=True)]
            ratio = statistics.median(ratios)
            spread = f"[{min(ratios):.2f}-{max(ratios):.2f}]"
            self.line(
                f"{section:<22} {name:<38} {_times(samples)}  "
                f"{ratio:.3f}x {versus} {spread} (target <= {target:.2f}x)",
                ratio <= target,
            )


def _times(s: Samples) -> str:
    client = statistics.median(s.client) * 1000
    wall = statistics.median(s.wall) * 1000
    return f"client {client:7.3f} ms/req  wall {wall:7.3f} ms/req"


def _rotated(names: Sequence[str], round_no: int) -> list[str]:
    k = round_no % len(names)
    return [*names[k:], *names[:k]]


# -- sync -------------------------------------------------------------------------------------


def bench_sync(url: str, plan: Plan, report: Report) -> None:
    from openai import OpenAI

    import llmcompare
    from llmcompare.cost import Budget, CostTracker
    from llmcompare.retry import RetryPolicy, with_retry

    raw = OpenAI(base_url=url, api_key=API_KEY, max_retries=0)
    model = llmcompare.get_model(f"chatgpt:{MODEL}", base_url=url, api_key=API_KEY)
    tracker = CostTracker(Budget(max_usd=1_000_000))
    helped = tracker.wrap(with_retry(model, RetryPolicy()))
    ps = prompts(plan.sync_n)

    def run_raw() -> None:
        for p in ps:
            r = raw.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": p}])
            _ = r.choices[0].message.content, r.usage

    def run_generate() -> None:
        for p in ps:
            c = model.generate(p)
            _ = c.text, c.usage

    def run_helped() -> None:
        for p in ps:
            c = helped.generate(p)
            _ = c.text, c.usage

    contenders: dict[str, Callable[[], None]] = {
        "raw OpenAI create": run_raw,
        "generate": run_generate,
        "generate + retry + tracker": run_helped,
    }
    samples = {name: Samples() for name in contenders}
    for fn in contenders.values():  # warm-up: clients, connections, first validations
        fn()
    for r in range(plan.rounds):
        for name in _rotated(list(contenders), r):
            gc.collect()
            with Timer(samples[name], plan.sync_n):
                contenders[name]()
    label = f"sync seq {plan.sync_n}"
    report.compare(
        label,
        {k: samples[k] for k in ("raw OpenAI create", "generate")},
        "raw OpenAI create",
        TARGET_CALL,
    )
    report.compare(
        "sync helpers on/off",
        {k: samples[k] for k in ("generate", "generate + retry + tracker")},
        "generate",
        TARGET_HELPERS,
        versus="off",
    )
    raw.close()
    model.close()


# -- async ------------------------------------------------------------------------------------


async def bench_async(url: str, plan: Plan, report: Report, sections: set[str]) -> None:
    from openai import AsyncOpenAI

    import llmcompare
    from llmcompare.batch import agenerate_many
    from llmcompare.cost import Budget, CostTracker
    from llmcompare.retry import RetryPolicy

    raw = AsyncOpenAI(base_url=url, api_key=API_KEY, max_retries=0)
    model = llmcompare.get_model(f"chatgpt:{MODEL}", base_url=url, api_key=API_KEY)

    async def gathered(n: int, conc: int, call: Callable[[str], Awaitable[None]]) -> None:
        sem = asyncio.Semaphore(conc)

        async def one(p: str) -> None:
            async with sem:
                await call(p)

        await asyncio.gather(*(one(p) for p in prompts(n)))

    async def raw_call(p: str) -> None:
        r = await raw.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": p}]
        )
        _ = r.choices[0].message.content, r.usage

    async def our_call(p: str) -> None:
        c = await model.agenerate(p)
        _ = c.text, c.usage

    async def raw_stream(p: str) -> None:
        stream = await raw.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": p}],
            stream=True,
            stream_options={"include_usage": True},
        )
        parts: list[str] = []
        usage = None
        async for event in stream:
            if event.choices:
                piece = event.choices[0].delta.content
                if piece:
                    parts.append(piece)
            if event.usage is not None:
                usage = event.usage
        _ = "".join(parts), usage

    async def our_stream(p: str) -> None:
        stream = model.astream(p)
        async for chunk in stream:
            _ = chunk.text
        c = stream.completion
        _ = c.text, c.usage

    async def measure(
        label: str,
        n: int,
        contenders: dict[str, Callable[[], Awaitable[Any]]],
    ) -> dict[str, Samples]:
        samples = {name: Samples() for name in contenders}
        for fn in contenders.values():
            await fn()
        for r in range(plan.rounds):
            for name in _rotated(list(contenders), r):
                gc.collect()
                with Timer(samples[name], n):
                    await contenders[name]()
        return samples

    n = plan.async_n
    if "async" in sections:
        for conc in (16, 64):
            samples = await measure(
                f"async c{conc}",
                n,
                {
                    "raw AsyncOpenAI + semaphore": partial(gathered, n, conc, raw_call),
                    "agenerate + semaphore": partial(gathered, n, conc, our_call),
                    "agenerate_many": partial(
                        agenerate_many, model, prompts(n), concurrency=conc, progress=False
                    ),
                },
            )
            report.compare(
                f"async c{conc} x{n}", samples, "raw AsyncOpenAI + semaphore", TARGET_CALL
            )

    if "stream" in sections:
        sn = plan.stream_n
        samples = await measure(
            "stream c16",
            sn,
            {
                "raw stream include_usage": lambda: gathered(sn, 16, raw_stream),
                "astream": lambda: gathered(sn, 16, our_stream),
            },
        )
        report.compare(
            f"stream c16 x{sn} {CHUNKS}ch", samples, "raw stream include_usage", TARGET_STREAM
        )

    if "helpers" in sections:

        def helped() -> Awaitable[Any]:
            return agenerate_many(
                model,
                prompts(n),
                concurrency=16,
                progress=False,
                retry=RetryPolicy(),
                rpm=1e9,
                tpm=1e12,
                tracker=CostTracker(Budget(max_usd=1_000_000)),
            )

        samples = await measure(
            "helpers",
            n,
            {
                "agenerate_many": lambda: agenerate_many(
                    model, prompts(n), concurrency=16, progress=False
                ),
                "agenerate_many + retry+limits+tracker": helped,
            },
        )
        report.compare(
            f"async helpers c16 x{n}", samples, "agenerate_many", TARGET_HELPERS, versus="off"
        )

    await raw.close()
    await model.aclose()


# -- imports in fresh processes ---------------------------------------------------------------

_IMPORT_CODE = """
import json, sys, time
c0, t0 = time.process_time(), time.perf_counter()
{body}
c1, t1 = time.process_time(), time.perf_counter()
print(json.dumps({{"cpu": c1 - c0, "wall": t1 - t0,
                  "heavy": sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})}}))
"""

_IMPORT_CASES = {
    "import llmcompare": "import llmcompare",
    "+ get_model('chatgpt')": (
        "import llmcompare\n"
        "m = llmcompare.get_model('chatgpt:{model}', base_url='{url}', api_key='{key}')"
    ),
    "+ first request": (
        "import llmcompare\n"
        "m = llmcompare.get_model('chatgpt:{model}', base_url='{url}', api_key='{key}')\n"
        "m.generate('hello there')"
    ),
    "raw: import openai": "import openai",
    "raw: + first request": (
        "import openai\n"
        "c = openai.OpenAI(base_url='{url}', api_key='{key}', max_retries=0)\n"
        "c.chat.completions.create(model='{model}', messages=[{{'role': 'user', "
        "'content': 'hello there'}}])"
    ),
}


def _run_import(body: str) -> dict[str, Any]:
    code = _IMPORT_CODE.format(body=body, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd="/"
    )
    if done.returncode != 0:
        sys.exit(f"import measurement failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def bench_import(url: str, plan: Plan, report: Report) -> None:
    bodies = {
        name: body.format(model=MODEL, url=url, key=API_KEY) for name, body in _IMPORT_CASES.items()
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in bodies}
    for body in bodies.values():  # warm the file cache and bytecode
        _run_import(body)
    for r in range(plan.import_runs):
        for name in _rotated(list(bodies), r):
            runs[name].append(_run_import(bodies[name]))

    def med(name: str, key: str) -> float:
        return float(statistics.median(x[key] for x in runs[name])) * 1000

    for name in bodies:
        text = (
            f"{'import (fresh proc)':<22} {name:<38} "
            f"client {med(name, 'cpu'):7.1f} ms      wall {med(name, 'wall'):7.1f} ms"
        )
        if name == "import llmcompare":
            heavy = sorted({m.split(".")[0] for x in runs[name] for m in x["heavy"]})
            ratio = med(name, "wall") / med("raw: import openai", "wall")
            text += (
                f"  {ratio:.2f}x import openai (target <= {TARGET_IMPORT_MS:.0f} ms wall, "
                f"heavy loaded: {', '.join(heavy) or 'none'})"
            )
            report.line(text, med(name, "wall") <= TARGET_IMPORT_MS and not heavy)
        elif name == "+ first request":
            ratio = med(name, "wall") / med("raw: + first request", "wall")
            report.line(text + f"  {ratio:.2f}x raw first request (no target)")
        else:
            report.line(text)


# -- soak -------------------------------------------------------------------------------------


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the peak is the best we have
        import resource

        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


async def soak_worker(url: str, total: int, checkpoint: int) -> dict[str, Any]:
    """Run in a fresh process: the whole helper stack at concurrency 64, RSS at checkpoints."""
    import llmcompare
    from llmcompare.batch import agenerate_many
    from llmcompare.cost import Budget, CostTracker
    from llmcompare.retry import RetryPolicy

    model = llmcompare.get_model(f"chatgpt:{MODEL}", base_url=url, api_key=API_KEY)
    tracker = CostTracker(Budget(max_usd=1_000_000))
    ps = prompts(checkpoint)
    rss: dict[int, int] = {}
    done = 0
    start = time.perf_counter()
    cpu = time.process_time()
    # Chunks of `checkpoint` requests; results are dropped after each chunk, as a long run
    # that writes them to a results file would, so what stays is what leaks.
    while done < total:
        results = await agenerate_many(
            model,
            ps,
            concurrency=64,
            progress=False,
            retry=RetryPolicy(),
            rpm=1e9,
            tpm=1e12,
            tracker=tracker,
        )
        failed = [r for r in results if not r.ok]
        if failed:
            raise RuntimeError(f"soak: {len(failed)} requests failed: {failed[0].error!r}")
        done += len(results)
        del results
        gc.collect()
        rss[done] = _rss_bytes()
    await model.aclose()
    return {
        "rss": rss,
        "requests": tracker.total.requests,
        "wall": time.perf_counter() - start,
        "cpu": time.process_time() - cpu,
    }


def bench_soak(url: str, plan: Plan, report: Report) -> None:
    cmd = [
        sys.executable,
        __file__,
        "--soak-worker",
        url,
        "--soak-n",
        str(plan.soak_n),
        "--soak-checkpoint",
        str(plan.soak_checkpoint),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"soak failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    rss = {int(k): v for k, v in out["rss"].items()}
    first, last = rss[plan.soak_checkpoint], rss[plan.soak_n]
    growth = (last - first) / first
    trail = " ".join(f"{k}:{v / 2**20:.1f}" for k, v in sorted(rss.items()))
    report.line(
        f"{'soak c64':<22} {'RSS MiB by requests':<38} {trail}",
    )
    report.line(
        f"{'soak c64':<22} {f'RSS {plan.soak_checkpoint} -> {plan.soak_n}':<38} "
        f"{first / 2**20:.1f} -> {last / 2**20:.1f} MiB  growth {growth * 100:+.2f}% "
        f"(target < {TARGET_RSS_GROWTH * 100:.0f}%; {out['requests']} requests, "
        f"client {out['cpu'] / out['requests'] * 1000:.3f} ms/req, "
        f"wall {out['wall'] / out['requests'] * 1000:.3f} ms/req)",
        growth < TARGET_RSS_GROWTH,
    )


# -- main -------------------------------------------------------------------------------------


class Server:
    """The test server in a subprocess, stopped by its PID."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--port", "0", "--chunks", str(CHUNKS)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("READY "):
            self.stop()
            sys.exit(f"the test server did not start: {line!r}")
        self.url = line.split(" ", 1)[1]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


SECTIONS = ("sync", "async", "stream", "helpers", "import", "soak")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and requests")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per measurement")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}"
    )
    parser.add_argument(
        "--no-fail", action="store_true", help="only report: exit 0 even when a target is missed"
    )
    # Failing is the default now; --strict is still accepted so older command lines work.
    parser.add_argument("--strict", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--soak-worker", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--soak-n", type=int, default=FULL.soak_n, help=argparse.SUPPRESS)
    parser.add_argument(
        "--soak-checkpoint", type=int, default=FULL.soak_checkpoint, help=argparse.SUPPRESS
    )
    # `nox -s bench -- ...` hands the same arguments to every benchmark script: ignore (and
    # say so) the ones meant for another script rather than fail.
    args, ignored = parser.parse_known_args(argv)
    if ignored:
        print(f"api_overhead: ignoring arguments {ignored}", file=sys.stderr)

    if args.soak_worker:
        out = asyncio.run(soak_worker(args.soak_worker, args.soak_n, args.soak_checkpoint))
        print(json.dumps(out))
        return 0

    plan = QUICK if args.quick else FULL
    if args.rounds is not None:
        plan = Plan(**{**plan.__dict__, "rounds": args.rounds})
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = sections - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {sorted(unknown)}")

    import openai

    import llmcompare

    print(
        f"api_overhead: llmcompare {llmcompare.__version__}, openai {openai.__version__}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}, rounds {plan.rounds}"
        + (" (quick)" if args.quick else ""),
        flush=True,
    )
    report = Report()
    server = Server()
    started = time.perf_counter()
    try:
        if "sync" in sections:
            bench_sync(server.url, plan, report)
        if sections & {"async", "stream", "helpers"}:
            asyncio.run(bench_async(server.url, plan, report, sections))
        if "import" in sections:
            bench_import(server.url, plan, report)
        if "soak" in sections:
            bench_soak(server.url, plan, report)
    finally:
        server.stop()
    print(
        f"done in {time.perf_counter() - started:.0f} s, load "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}: "
        + ("all targets met" if not report.failed else f"{len(report.failed)} target(s) missed"),
        flush=True,
    )
    return 1 if report.failed and not args.no_fail else 0


if __name__ == "__main__":
    sys.exit(main())
