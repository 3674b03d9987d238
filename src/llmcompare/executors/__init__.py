"""Where a local model's requests run: in this process (the default) or on Ray actors.

:func:`llmcompare.compare` takes ``executor=``. Without one, every model runs in this process
through :func:`llmcompare.generate_many`. With :class:`RayExecutor`, each local (open-weights)
model built by the registry has its requests sharded across Ray actors, each of which builds the
model once and runs its ``generate_batch``; API models keep running in this process.

An executor is anything with the two methods of :class:`Executor`. Importing this package is
light: Ray is imported when a :class:`RayExecutor` first runs (``pip install "llmcompare[ray]"``).
"""

from llmcompare.executors._base import Executor, WorkerStats
from llmcompare.executors._ray import RayExecutor

__all__ = ["Executor", "RayExecutor", "WorkerStats"]
