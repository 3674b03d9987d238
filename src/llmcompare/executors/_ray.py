"""The Ray executor: a local model's requests sharded across Ray core actors.

Each actor builds the model once, from the registry name and options the driver's model was
built with (:func:`llmcompare.plugins.spec_of`), so its weights load once per actor (and a
converted GGUF comes from the shared cache), then answers shards of ``batch_size`` requests with
the model's own ``generate_batch``. Shards are handed out as actors become free; each answer goes
back to the driver, which records it (run folder, response cache) as it arrives. An actor that
dies (killed, out of memory, its node lost) has its unfinished shard run again on the others:
nothing is lost, and since answers are recorded only when a whole shard comes back, nothing is
recorded twice.

The run starts only once every actor has built its model (``on_ready``): like the in-process
``warm_up``, starting actors and loading weights is kept out of the comparison's wall time and
so out of its throughput.

Not built on ``ray.data.llm``: that path is vLLM-only and would bypass the engine and its
measurements (compute time, device, energy).
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from llmcompare.errors import BackendError, ConfigurationError, user_stacklevel
from llmcompare.executors._base import WorkerStats
from llmcompare.model import Model
from llmcompare.plugins import ModelSpec, spec_of
from llmcompare.types import Completion, Request, Result

__all__ = ["RayExecutor"]

_NO_RAY = "the Ray executor needs Ray, which is not installed: pip install 'llmcompare[ray]'"

# What Ray raises when a worker, not the model, failed: the actor died (killed, its init
# failed), its process crashed, it was killed for memory, its node died, or its result was lost
# with the node. Such a shard runs again on the other actors.
_LOST_WORKER = (
    "RayActorError",
    "WorkerCrashedError",
    "OutOfMemoryError",
    "NodeDiedError",
    "ObjectLostError",
)


def _ray() -> Any:
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise ConfigurationError(_NO_RAY) from None


def _lost_worker(ray: Any, exc: BaseException) -> bool:
    """Whether ``exc`` (from ``ray.get``) means the worker was lost, not that the model failed."""
    kinds = [getattr(ray.exceptions, name, None) for name in _LOST_WORKER]
    return isinstance(exc, tuple(k for k in kinds if isinstance(k, type)))


class _Worker:
    """The actor: one model, built once, answering shards."""

    def __init__(self, spec: ModelSpec, name: str) -> None:
        self.name = name
        self.model = spec.build()
        self.model.warm_up()

    def ready(self) -> bool:
        """Answers once the constructor (model build, weight load) has finished."""
        return True

    def run(self, requests: Sequence[Request]) -> list[Completion | BaseException]:
        out: list[Completion | BaseException] = []
        for result in self.model.generate_batch(list(requests)):
            if result.completion is not None:
                out.append(result.completion.model_copy(update={"worker": self.name}))
            else:
                assert result.error is not None
                out.append(result.error)
        return out


class RayExecutor:
    """Run each local model's requests on ``workers`` Ray actors; API models stay in the driver.

    Example (not run here: it starts a Ray cluster)::

        from llmcompare import compare
        from llmcompare.executors import RayExecutor

        compare(["llama", "chatgpt"], "prompts.jsonl", executor=RayExecutor(workers=4))

    Args:
        workers: How many actors per local model.
        num_gpus_per_worker: GPUs each actor reserves (0: CPU only).
        num_cpus_per_worker: CPUs each actor reserves.
        address: The Ray cluster to join (``"auto"``, ``"ray://host:10001"``); None joins the
            cluster this process already started, else starts a local one. A Ray session a
            run starts (or joins) ends with the run, Ctrl-C included; one this process had
            started before is left running.
        ready_timeout_s: How long the actors may take to start and load the model before the
            run is given up (a cluster that cannot place them, say).

    Attributes:
        stats: Per model id, what each worker did in the last run (device, requests, compute
            seconds, whether it survived).
        actors: The actors of the run in progress (empty between runs).

    Raises:
        ConfigurationError: When Ray is not installed, ``workers`` is below 1 or a resource
            count is negative.
    """

    def __init__(
        self,
        workers: int = 2,
        *,
        num_gpus_per_worker: float = 0.0,
        num_cpus_per_worker: float = 1.0,
        address: str | None = None,
        ready_timeout_s: float = 900.0,
    ) -> None:
        # Here, not when the local model's turn comes: by then the API models ran and were paid.
        if importlib.util.find_spec("ray") is None:
            raise ConfigurationError(_NO_RAY)
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigurationError(f"workers must be a whole number >= 1, got {workers!r}")
        if num_gpus_per_worker < 0 or num_cpus_per_worker < 0:
            raise ConfigurationError("num_gpus_per_worker and num_cpus_per_worker must be >= 0")
        if not ready_timeout_s > 0:
            raise ConfigurationError(f"ready_timeout_s must be > 0, got {ready_timeout_s!r}")
        self.ready_timeout_s = ready_timeout_s
        self.workers = workers
        self.num_gpus_per_worker = num_gpus_per_worker
        self.num_cpus_per_worker = num_cpus_per_worker
        self.address = address
        self.stats: dict[str, list[WorkerStats]] = {}
        self.actors: list[Any] = []

    def __repr__(self) -> str:
        return (
            f"RayExecutor(workers={self.workers}, num_gpus_per_worker="
            f"{self.num_gpus_per_worker}, address={self.address!r})"
        )

    def handles(self, model: Model) -> bool:
        """Local (open-weights) models built by the registry; API models run in the driver.

        A local model built by hand (not by :func:`~llmcompare.get_model`) cannot be built
        again in an actor: it runs in this process, with a warning.
        """
        if not model.info.open_weights:
            return False
        if spec_of(model) is None:
            warnings.warn(
                f"{model.id}: built by hand, so the Ray workers cannot build it: it runs in this "
                "process (build it with llmcompare.get_model to run it on Ray)",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
            return False
        return True

    def run(
        self,
        model: Model,
        requests: Sequence[Request],
        *,
        batch_size: int,
        on_result: Callable[[Result], None],
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        """Answer ``requests`` on the actors; see :meth:`Executor.run`.

        Raises:
            ConfigurationError: When the model was not built by the registry (an actor could
                not build it), the cluster has fewer CPUs or GPUs than the workers reserve, or
                the actors are not ready within ``ready_timeout_s``.
        """
        spec = spec_of(model)
        if spec is None:
            raise ConfigurationError(
                f"{model.id}: the Ray executor builds models from their registry name; build "
                "this one with llmcompare.get_model(...)"
            )
        ray = _ray()
        # A Ray session this run starts (or joins) is this run's: it ends with it, whatever
        # ends the run. On Ctrl-C the CLI leaves at once (os._exit, which skips Ray's exit
        # hook), and a local cluster's processes would otherwise outlive it for minutes. A
        # session the caller started stays theirs: only this run's actors are killed.
        own = not ray.is_initialized()
        shards: _Shards | None = None
        try:
            if own:
                ray.init(address=self.address, include_dashboard=False)
            self._check_resources(ray.cluster_resources())
            remote = ray.remote(
                num_cpus=self.num_cpus_per_worker, num_gpus=self.num_gpus_per_worker
            )(_Worker)
            names = [f"ray-{k}" for k in range(self.workers)]
            self.actors = [remote.remote(spec, name) for name in names]
            shards = _Shards(ray, self.actors, names, requests, max(1, batch_size), on_result)
            shards.start(self.ready_timeout_s)
            if on_ready is not None:
                on_ready()
            shards.run(model.id)
        finally:
            for actor in self.actors:
                ray.kill(actor)
            self.actors = []
            if shards is not None:
                self.stats[model.id] = shards.stats()
            if own:
                ray.shutdown()

    def _check_resources(self, cluster: dict[str, float]) -> None:
        """Refuse workers the cluster cannot place: they would wait for resources forever."""
        for kind, each in (("CPU", self.num_cpus_per_worker), ("GPU", self.num_gpus_per_worker)):
            need = each * self.workers
            have = float(cluster.get(kind, 0.0))
            if need > have:
                raise ConfigurationError(
                    f"RayExecutor: {self.workers} workers x {each:g} {kind} need {need:g} {kind}, "
                    f"the Ray cluster has {have:g}; use fewer workers or fewer per worker"
                )


class _Shards:
    """Hands shards of requests to free actors and takes their answers back as they come."""

    def __init__(
        self,
        ray: Any,
        actors: Sequence[Any],
        names: Sequence[str],
        requests: Sequence[Request],
        size: int,
        on_result: Callable[[Result], None],
    ) -> None:
        self.ray = ray
        self.actors = actors
        self.names = names
        self.requests = requests
        self.on_result = on_result
        self.todo: deque[list[int]] = deque(
            list(range(i, min(i + size, len(requests)))) for i in range(0, len(requests), size)
        )
        self.inflight: dict[Any, tuple[int, list[int]]] = {}
        self.idle = list(range(len(actors)))
        self.alive = set(self.idle)

        self.served = dict.fromkeys(names, 0)
        self.compute = dict.fromkeys(names, 0.0)
        self.devices: dict[str, str | None] = dict.fromkeys(names)

    def start(self, timeout_s: float) -> None:
        """Wait until every actor has built its model; one that died doing so is left out."""
        ray = self.ray
        refs = {actor.ready.remote(): k for k, actor in enumerate(self.actors)}
        done, pending = ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
        if pending:
            raise ConfigurationError(
                f"{len(pending)} of {len(refs)} Ray workers were not ready after {timeout_s:g} s "
                "(the cluster cannot place them, or building the model hangs)"
            )
        for ref in done:
            try:
                ray.get(ref)
            except Exception as exc:
                if not _lost_worker(ray, exc):
                    raise
                # Its shards go to the others; if none is left, every request gets the error.
                k = refs[ref]
                self.alive.discard(k)
                self.idle.remove(k)

    def dispatch(self) -> None:
        while self.idle and self.todo:
            k = self.idle.pop(0)
            shard = self.todo.popleft()
            ref = self.actors[k].run.remote([self.requests[i] for i in shard])
            self.inflight[ref] = (k, shard)

    def run(self, model_id: str) -> None:
        ray = self.ray
        self.dispatch()
        while self.inflight:
            (ref,), _ = ray.wait(list(self.inflight), num_returns=1)
            k, shard = self.inflight.pop(ref)
            try:
                outs = ray.get(ref)
            except Exception as exc:
                if _lost_worker(ray, exc):
                    # The worker was lost (killed, out of memory, its node died): its shard
                    # goes to the others.
                    self.alive.discard(k)
                    self.todo.appendleft(shard)
                    self.dispatch()
                    continue
                if not isinstance(exc, ray.exceptions.RayTaskError):
                    raise
                # generate_batch itself failed: the whole shard gets the error, as in process.
                cause = exc.cause if isinstance(exc.cause, Exception) else exc
                outs = [cause] * len(shard)
            self.take(k, shard, outs)
            self.idle.append(k)
            self.dispatch()
        lost = BackendError("every Ray worker died before answering", model_id=model_id)
        for shard in self.todo:
            for i in shard:
                self.on_result(Result(i, self.requests[i], error=lost))

    def take(self, k: int, shard: Sequence[int], outs: Sequence[Any]) -> None:
        name = self.names[k]
        for i, out in zip(shard, outs, strict=True):
            if isinstance(out, Completion):
                self.served[name] += 1
                self.compute[name] += out.compute_s or 0.0
                self.devices[name] = out.device
                self.on_result(Result(i, self.requests[i], completion=out))
            else:
                self.on_result(Result(i, self.requests[i], error=out))

    def stats(self) -> list[WorkerStats]:
        return [
            WorkerStats(n, self.devices[n], self.served[n], self.compute[n], alive=k in self.alive)
            for k, n in enumerate(self.names)
        ]
