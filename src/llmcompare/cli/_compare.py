"""``llmcompare compare``: a config file and flags over it, built into a plan and run."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from llmcompare.cli._common import (
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    _fail,
    _format_option,
    _formats,
    _full_answers,
    _os_error,
    _rate_limit_options,
    _resume_command,
    _settings,
    _write_reports,
)
from llmcompare.cli._judge import judge_options
from llmcompare.errors import ConfigurationError, LLMCompareError

if TYPE_CHECKING:
    from rich.console import Console

    from llmcompare.config import CompareConfig, ComparePlan, ExecutorConfig
    from llmcompare.record import Comparison
    from llmcompare.report import Format

_F = TypeVar("_F", bound=Callable[..., Any])


DEMO_WHAT_IF = "chatgpt:gpt-5.4-mini"
"""What a bare ``llmcompare compare`` without ChatGPT prices offline, so it shows a decision."""


def default_models() -> tuple[list[str], list[str]]:
    """The models a bare ``llmcompare compare`` runs, and hints for those it cannot.

    Returns:
        ``(model names, hint lines)``: the embedded Llama always; ChatGPT when
        ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set, otherwise a line saying how to add it.
    """
    names = ["llama"]
    hints = []
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        names.append("chatgpt")
    else:
        hints.append(
            "chatgpt: not configured; set OPENAI_API_KEY (or OPENAI_BASE_URL for an "
            "OpenAI-compatible server) to include it"
        )
    return names, hints


if TYPE_CHECKING:
    _DecimalParamType = click.ParamType[Decimal]
else:
    # Newer clicks make ParamType generic; subscripting it at run time would break click 8.1.
    _DecimalParamType = click.ParamType


class _Dollars(_DecimalParamType):
    """A dollar amount: a finite decimal number, 0 or more (``--budget-usd``)."""

    name = "amount"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Decimal:
        """Parse ``value``, or fail with click's usage error (exit 2) naming the option."""
        if isinstance(value, Decimal):
            amount = value
        else:
            try:
                amount = Decimal(str(value))
            except ArithmeticError:  # decimal.InvalidOperation: not a number at all
                self.fail(f"{value!r} is not a dollar amount.", param, ctx)
        # Checked here, at parse time, so a bad budget stops the run before anything is loaded
        # or sent; NaN and infinities are numbers to Decimal but bound nothing.
        if not amount.is_finite():
            self.fail(f"{value!r} is not a finite dollar amount.", param, ctx)
        if amount < 0:
            self.fail(f"{value!r} is negative: a budget is 0 or more dollars.", param, ctx)
        return amount


_FLAG_ORDER = "llmcompare.model_flags"


class _CompareCommand(click.Command):
    """The ``compare`` command, which also keeps the order its ``-m`` and ``-O`` flags came in.

    click gathers each repeated option's values on their own, but an ``-O`` applies to the
    ``-m`` before it: the order is kept in ``ctx.meta`` for :func:`_model_flags`.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Note the order of ``-m`` and ``-O``, then parse as click does."""
        # click's own parser, on a copy: it says which option each value was given to, in order.
        _, _, order = self.make_parser(ctx).parse_args(args=list(args))
        ctx.meta[_FLAG_ORDER] = [p.name for p in order if p.name in ("models", "options")]
        return super().parse_args(ctx, args)


def _model_flags(models: Sequence[str], options: Sequence[str]) -> list[tuple[str, str]]:
    """``("-m", value)`` and ``("-O", value)`` pairs in command-line order."""
    if not options:
        return [("-m", m) for m in models]
    order = click.get_current_context().meta.get(_FLAG_ORDER, [])
    values = {"models": iter(models), "options": iter(options)}
    return [("-m" if name == "models" else "-O", next(values[name])) for name in order]


def _options(*decorators: Callable[[_F], _F]) -> Callable[[_F], _F]:
    """Several click decorators as one, applied so that ``--help`` lists them in this order."""

    def apply(f: _F) -> _F:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


_source_options = _options(
    click.argument("prompts", required=False),
    click.option(
        "--suite",
        type=click.Choice(["builtin", "humaneval"]),
        help="Run a named suite instead of PROMPTS (humaneval needs --allow-code-execution).",
    ),
    click.option(
        "--field",
        "fields",
        multiple=True,
        metavar="KEY=COLUMN",
        help="For a dataset source: the column of an item field (prompt, reference, id, system, "
        "tags); repeat for more.",
    ),
    click.option(
        "--template", help='For a dataset source: the prompt from its columns, "Q: {question}".'
    ),
    click.option("--split", help="For a dataset source with several splits: the one to run."),
    click.option("--limit", type=click.IntRange(min=1), help="Run only the first N items."),
)
"""Where the items come from: PROMPTS or --suite, and a dataset's columns."""

_scoring_options = _options(
    click.option(
        "--allow-code-execution",
        is_flag=True,
        default=None,
        help="Let code scorers (unit_tests, as HumanEval's) run the models' code, sandboxed: no "
        "network, limits, a throwaway folder.",
    ),
    click.option(
        "--scorer",
        "scorers",
        multiple=True,
        metavar="NAME",
        help="A scorer for every item (numeric, contains, exact, regex, json, unit_tests, ...); "
        "repeat for more.",
    ),
    click.option(
        "--pass-at",
        "pass_at",
        multiple=True,
        type=click.IntRange(min=1),
        metavar="K",
        help="Report pass@K for code scorers (repeat; default 1 and --samples).",
    ),
)
"""How compare scores the answers (loadtest scores nothing)."""

_load_options = _options(
    click.option(
        "--load",
        metavar="LEVELS",
        help="Sweep these levels of requests in flight after the run (e.g. 1,4,16,64): timed, "
        "never from the cache; each model's figures per level and its operating point.",
    ),
    click.option(
        "--slo",
        metavar="TARGET",
        help="The sweep's latency target, seconds (e.g. ttft_p95<=1,latency_p95<=10): each "
        "model's operating point is its highest throughput that meets it.",
    ),
)
"""The load sweep: its levels and its latency target."""

_model_options = _options(
    click.option(
        "-c",
        "--config",
        type=click.Path(dir_okay=False, path_type=Path),
        help="A comparison config file (TOML, or YAML with PyYAML); the flags given override it.",
    ),
    click.option(
        "-m",
        "--model",
        "models",
        multiple=True,
        metavar="[LABEL=]NAME",
        help="A model; repeat for more. LABEL=NAME names it (one model on two servers); with -c, "
        "a LABEL of the file takes that model. Given, -m replaces the file's models.",
    ),
    click.option(
        "-O",
        "--option",
        "options",
        multiple=True,
        metavar="KEY=VALUE",
        help="An option of the -m before it: a backend option (base_url, timeout, device, ...), "
        "api_key_env (the variable holding its key), rpm, tpm, hosted (hosted.gpu) or "
        "settings.NAME. VALUE is read as JSON when it parses, else as text.",
    ),
)
"""The models: a config file, and -m flags each followed by its own -O options."""

_sending_options = _options(
    click.option(
        "-o",
        "--out",
        "out_typed",
        # As typed (a str): "./a=b" says a folder, where a Path would make it "a=b".
        type=click.Path(file_okay=False),
        help="Report folder.",
    ),
    _format_option("Report formats to write with --out (default: json, csv, html)."),
    click.option("--max-tokens", type=click.IntRange(min=1), help="Token limit per answer."),
    click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature."),
    click.option("--seed", type=int, help="Sampling seed."),
    click.option("--concurrency", default=8, show_default=True, type=click.IntRange(min=1)),
    click.option(
        "--budget-usd",
        type=_Dollars(),
        help="Refuse requests beyond this many dollars (0 or more).",
    ),
    *_rate_limit_options("model"),
    click.option(
        "--progress/--no-progress", default=None, help="Progress bar (default: on a TTY)."
    ),
    click.option(
        "--force-new",
        is_flag=True,
        help="Start over in an --out folder that holds another comparison (it is refused "
        "otherwise).",
    ),
    click.option(
        "--cache/--no-cache",
        default=True,
        show_default=True,
        help="Reuse answers from the response cache (LLMCOMPARE_CACHE_DIR, else the user cache).",
    ),
    click.option("--refresh", is_flag=True, help="Send every request again, even when cached."),
)
"""Where the run goes and how its requests are sent."""


def with_run_flags(command: Callable[..., None]) -> Callable[..., None]:
    """Call a run command with the shared option groups' values as one :class:`RunFlags`.

    Put it under the click decorators. The command takes ``flags`` and then its own flags by
    name; every other value click parsed is a field of RunFlags.
    """
    own = set(inspect.signature(command).parameters) - {"flags"}

    @functools.wraps(command)
    def run(**params: Any) -> None:
        shared = {name: params.pop(name) for name in set(params) - own}
        command(RunFlags(**shared), **params)

    return run


@click.command("compare", cls=_CompareCommand)
@_source_options
@_scoring_options
@_load_options
@click.option(
    "--what-if",
    "what_if",
    multiple=True,
    metavar="MODEL",
    help="Price the items at MODEL's table prices without sending anything (repeat): input "
    "tokens counted offline, output estimated from the answers; marked 'estimated, not sent'.",
)
@_model_options
@click.option(
    "-S",
    "--sweep",
    "sweeps",
    multiple=True,
    metavar="KEY=V1,V2",
    help="Run each model once per value of a setting or backend option, as its own column "
    "(-S reasoning_effort=low,high; -S temperature=0,0.7); repeat for more (combined).",
)
@_sending_options
@click.option(
    "--samples",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Run each item this many times per model (sample s gets seed base + s).",
)
@click.option(
    "--ray-workers",
    type=click.IntRange(min=1),
    help="Run each local model on this many Ray actors (pip install 'llmcompare[ray]').",
)
@click.option("--ray-address", help="The Ray cluster to join (default: start a local one).")
@judge_options()
@with_run_flags
def compare_cmd(
    flags: RunFlags,
    allow_code_execution: bool | None,
    pass_at: Sequence[int],
    scorers: Sequence[str],
    what_if: Sequence[str],
    sweeps: Sequence[str],
    samples: int,
    ray_workers: int | None,
    ray_address: str | None,
    judges: Sequence[str],
    judge_mode: str | None,
    judge_rubric: Path | None,
) -> None:
    """Run PROMPTS (a file, a dataset, hf:NAME[:CONFIG[:SPLIT]] or --suite) on every model.

    PROMPTS is a JSONL, CSV or YAML file, a saved dataset's folder or a hub id (its columns
    mapped with --field/--template); without it, --suite (default: builtin) runs.

    With --out DIR the run is saved as it goes (each answer the moment it arrives) and the
    same command on the same folder resumes it: only what is missing is sent. Ctrl-C stops
    within a second, keeps what is done and prints the command that resumes.

    The models come from -c FILE, or from -m flags each followed by its own -O options:
    -m vllm=chatgpt:meta-llama/Llama-3.1-8B-Instruct -O base_url=http://127.0.0.1:8000/v1
    -O api_key_env=VLLM_API_KEY -m chatgpt:gpt-5.4-mini -O api_key_env=OPENAI_API_KEY.

    --judge NAME has a judge model say which answer is better (both orders, by default), for
    each pair of models and item; repeat it for a panel. Its cost is reported on its own line.
    """
    from llmcompare.report import print_report
    from llmcompare.report._terminal import terminal_console

    console = terminal_console()
    names = list(flags.models)
    if not names and flags.config is None:
        names, hints = default_models()
        for hint in hints:
            console.print(f"[yellow]{hint}[/yellow]")
        if "chatgpt" not in names and not what_if:
            # The keyless demo still shows a decision: ChatGPT priced offline, nothing sent.
            what_if = (DEMO_WHAT_IF,)
            console.print(
                f"[yellow]{DEMO_WHAT_IF}: priced offline on the same items (estimated, not "
                "sent); --what-if MODEL prices another[/yellow]"
            )
    run_command(
        console,
        lambda result, out, chosen: print_report(
            result, console, full_answers=_full_answers(out, chosen)
        ),
        dataclasses.replace(
            flags,
            models=names,
            samples=samples,
            sources={
                "allow_code_execution": allow_code_execution,
                "pass_at": list(pass_at) or None,
                "scorers": list(scorers) or None,
                "what_if": list(what_if) or None,
            },
            ray=(ray_workers, ray_address),
            sweeps=sweeps,
            judge=(judges, judge_mode, judge_rubric),
        ),
    )


@dataclasses.dataclass(frozen=True)
class RunFlags:
    """A run command's flags as click parsed them; :func:`run_command` builds its plan from them.

    The fields up to ``refresh`` are the option groups that ``compare`` and ``loadtest`` both
    take (:func:`with_run_flags` gathers them); each command sets the rest, its own.

    Attributes:
        prompts: PROMPTS (None: --suite, else the file's, else the built-in suite).
        suite: --suite (with PROMPTS, refused).
        fields: --field, as typed.
        template: --template.
        split: --split.
        limit: --limit.
        load: --load, as typed.
        slo: --slo.
        config: The -c file.
        models: -m, in order.
        options: -O, in order (each an option of the -m before it).
        out_typed: --out, as typed.
        formats: -f.
        max_tokens: --max-tokens.
        temperature: --temperature.
        seed: --seed.
        concurrency: --concurrency.
        budget_usd: --budget-usd.
        rpm: --rpm.
        tpm: --tpm.
        progress: --progress/--no-progress (None: on a TTY).
        force_new: --force-new.
        cache: --cache/--no-cache.
        refresh: --refresh.
        samples: --samples.
        sources: The config keys of compare's other flags (None: not given).
        ray: --ray-workers and --ray-address.
        sweeps: -S.
        judge: --judge, --judge-mode and --judge-rubric.
        only_sweeps: The file's scorers, judge and what-if left out (``loadtest``).
    """

    prompts: str | None
    suite: str | None
    fields: Sequence[str]
    template: str | None
    split: str | None
    limit: int | None
    load: str | None
    slo: str | None
    config: Path | None
    models: Sequence[str]
    options: Sequence[str]
    out_typed: str | None
    formats: Sequence[str]
    max_tokens: int | None
    temperature: float | None
    seed: int | None
    concurrency: int
    budget_usd: Decimal | None
    rpm: float | None
    tpm: float | None
    progress: bool | None
    force_new: bool
    cache: bool
    refresh: bool
    samples: int = 1
    sources: dict[str, Any] = dataclasses.field(default_factory=dict)
    ray: tuple[int | None, str | None] = (None, None)
    sweeps: Sequence[str] = ()
    judge: tuple[Sequence[str], str | None, Path | None] = ((), None, None)
    only_sweeps: bool = False


def run_command(
    console: Console,
    show: Callable[[Comparison, Path | None, tuple[Format, ...]], None],
    flags: RunFlags,
) -> NoReturn:
    """Build the plan the flags ask for, run it, show its record and write the reports.

    Every check is made before anything is sent (a bad flag exits 2); ``show`` prints the
    record (compare's report, loadtest's sweep tables). Exits 0, or 1 when requests failed.
    """
    # The flags' own checks (exit 2) first, in the order they are listed, then the plan's.
    model_flags = _model_flags(flags.models, flags.options)
    overrides = {
        "fields": _fields(flags.fields, flags.template),
        "split": flags.split,
        "limit": flags.limit,
        "load": _levels(flags.load),
        "slo": flags.slo,
        **flags.sources,
        "settings": _settings(flags.max_tokens, flags.temperature, flags.seed),
    }
    if flags.suite is not None and flags.prompts is not None:
        _fail(
            f"give PROMPTS or --suite, not both (got {flags.prompts!r} and --suite {flags.suite})"
        )
    out = None if flags.out_typed is None else _out_folder(flags.out_typed)
    # The file (if any), then the flags over it: one plan, whatever the models came from.
    plan = _compare_plan(flags, out, model_flags, overrides)
    if out is None:
        out = plan.out
    else:
        # The folder as typed, as messages about it name it (the plan holds it absolute).
        plan = dataclasses.replace(plan, out=out)
    chosen = _formats(flags.formats)
    try:
        with _warnings_shown(console):
            result = plan.run(
                progress=flags.progress,
                force_new=flags.force_new,
                cache=flags.cache,
                refresh=flags.refresh,
            )
    except (ConfigurationError, ValueError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _interrupted(out)
    except OSError as exc:  # a full disk, a folder where answers.jsonl should be
        _os_error(exc, out)
    finally:
        plan.close()
    show(result, out, chosen)
    if out is not None:
        _write_reports(result, out, chosen, console)
    sys.exit(EXIT_FAILURES if result.failed else EXIT_OK)


@contextlib.contextmanager
def _warnings_shown(console: Console) -> Iterator[None]:
    """Show a run's shelf-life warnings as one plain line each, the moment they are raised."""
    from rich.markup import escape

    from llmcompare.comparison import ShelfLifeWarning

    shown = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, ShelfLifeWarning):
            console.print(f"[yellow]warning: {escape(str(message))}[/yellow]", highlight=False)
        else:
            shown(message, category, *args, **kwargs)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


# An option as -O takes it: KEY=VALUE, the key a name (settings.max_tokens, base_url).
_OPTION_SHAPED = re.compile(r"[A-Za-z_][\w.-]*=.*", re.DOTALL)


def _out_folder(typed: str) -> Path:
    """The --out folder; one that looks like ``-O KEY=VALUE`` (``-o max_tokens=5``) exits 2."""
    if _OPTION_SHAPED.fullmatch(typed):
        _fail(
            f"--out {typed!r} looks like an option (KEY=VALUE): did you mean -O {typed}? "
            f"(for a folder of that name, write ./{typed})"
        )
    return Path(typed)


def _fields(fields: Sequence[str], template: str | None) -> dict[str, str] | None:
    """--field KEY=COLUMN flags and --template as a field mapping; exit 2 if malformed."""
    mapping: dict[str, str] = {}
    for flag in fields:
        key, sep, column = flag.partition("=")
        if not sep or not key.strip() or not column:
            _fail(f"--field takes KEY=COLUMN (prompt=question), got {flag!r}")
        mapping[key.strip()] = column
    if template is not None:
        mapping["template"] = template
    return mapping or None


def _compare_plan(
    flags: RunFlags,
    out: Path | None,
    model_flags: Sequence[tuple[str, str]],
    overrides: dict[str, Any],
) -> ComparePlan:
    """The config file with the flags given over it, built (nothing is sent); exit 2 if bad.

    ``model_flags`` are the -m and -O flags in command-line order; ``overrides`` the config
    keys of the other flags as checked (None: not given).
    """
    from click.core import ParameterSource

    from llmcompare.config import CompareConfig, judge_from_flags, load_config, models_from_flags
    from llmcompare.config._sweep import parse_sweep_flag

    ctx = click.get_current_context()

    def given(name: str) -> bool:
        # --samples and --concurrency have defaults: only a value typed in overrides the file.
        return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)

    config = flags.config
    try:
        base = load_config(config) if config is not None else CompareConfig()
        if flags.only_sweeps:
            # A load test times the models: the file's scorers, judge and what-if stay out.
            base = base.model_copy(update={"scorers": [], "judge": None, "what_if": []})
        return base.with_overrides(
            models=models_from_flags(model_flags, base) if model_flags else None,
            prompts=[chosen] if (chosen := flags.suite or flags.prompts) is not None else None,
            samples=flags.samples if given("samples") or config is None else None,
            concurrency=flags.concurrency if given("concurrency") or config is None else None,
            budget_usd=flags.budget_usd,
            rpm=flags.rpm,
            tpm=flags.tpm,
            out=out,
            executor=_ray_executor(base, *flags.ray),
            sweep=dict(parse_sweep_flag(flag) for flag in flags.sweeps),
            judge=judge_from_flags(*flags.judge, base.judge),
            **overrides,
        ).build()
    except (LLMCompareError, LookupError, ValueError) as exc:
        _fail(str(exc))


def _levels(text: str | None) -> list[int] | None:
    """``--load 1,4,16``'s levels (exit 2 on anything but whole numbers of 1 or more)."""
    if text is None:
        return None
    try:
        levels = [int(x) for x in text.split(",")]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        _fail(f"--load {text!r}: give levels of requests in flight, such as 1,4,16,64")
    return levels


def _ray_executor(
    base: CompareConfig, workers: int | None, address: str | None
) -> ExecutorConfig | None:
    """The executor the --ray-* flags ask for over the file's (None: the file's stands)."""
    from llmcompare.config import ExecutorConfig

    if workers is None and address is None:
        return None
    old = base.executor.model_dump(exclude_unset=True) if base.executor is not None else {}
    new = {"kind": "ray", **({"workers": workers} if workers is not None else {})}
    return ExecutorConfig.model_validate({**old, **new, "address": address or old.get("address")})


def _interrupted(out: Path | None) -> NoReturn:
    command = _resume_command()
    if out is None:
        click.echo(
            "llmcompare: interrupted; nothing was saved (with --out DIR a run can be resumed)",
            err=True,
        )
    else:
        click.echo(
            f"llmcompare: interrupted; the answers so far are in {out}. Resume with:\n  {command}",
            err=True,
        )
    # The run folder is closed and synced by now. Leave at once: tearing down torch and the
    # thread pools at interpreter exit would add seconds to a Ctrl-C.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)
