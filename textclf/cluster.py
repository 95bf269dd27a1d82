"""Which tf.distribute strategy a run uses, and this process's place in a cluster.

``strategy="multiworker"`` reads the cluster from the ``TF_CONFIG``
environment variable, the convention of TensorFlow (and of Kubernetes
operators such as Kubeflow's TFJob)::

    TF_CONFIG='{"cluster": {"worker": ["host1:2222", "host2:2222"]},
                "task": {"type": "worker", "index": 0}}'

The chief (task ``chief``, or worker 0 when the cluster lists no chief) is
the one process that writes the run folder and the export.  ``TF_CONFIG`` is
checked here first, so a mistake is a ``ValueError`` naming it rather than a
worker waiting forever for peers that will never come.
"""

from __future__ import annotations

import dataclasses
import json
import os

from textclf.config import STRATEGIES

TF_CONFIG = "TF_CONFIG"
_EXAMPLE = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
            '"task": {"type": "worker", "index": 0}}\'')
# MultiWorkerMirroredStrategy can be created once per process, before any
# other TensorFlow op; every later request must get the same object.
_strategies: dict = {}


@dataclasses.dataclass(frozen=True)
class WorkerRole:
    """This process's place in the run.

    Attributes:
        task_type: ``chief`` or ``worker`` (``chief`` for a single process).
        index: Index of the task within its type.
        workers: Number of processes in the cluster (1 without TF_CONFIG).
    """

    task_type: str = "chief"
    index: int = 0
    workers: int = 1

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run folder, the checkpoints and the export."""
        return self.task_type == "chief"

    def describe(self) -> str:
        """``worker 1 of 2``-style text for log messages."""
        return f"{self.task_type} {self.index} ({self.workers} processes)"


def _fail(message: str, text: str):
    shown = text if len(text) <= 300 else text[:300] + "..."
    raise ValueError(f"{message}. Received: TF_CONFIG={shown!r}")


def _check_addresses(kind: str, addresses, text: str) -> list[str]:
    if not isinstance(addresses, list) or not addresses:
        _fail(f'TF_CONFIG cluster.{kind} must be a non-empty list of "host:port" addresses', text)
    for position, address in enumerate(addresses):
        host, _, port = address.rpartition(":") if isinstance(address, str) else ("", "", "")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            _fail(f'TF_CONFIG cluster.{kind}[{position}] must be a "host:port" address with a port '
                  f"from 1 to 65535, not {address!r}", text)
    return addresses


def parse_tf_config(text: str | None) -> WorkerRole:
    """Checks a ``TF_CONFIG`` value for MultiWorkerMirroredStrategy and returns this task's role.

    Args:
        text: The variable's value; ``None`` when it is not set.

    Returns:
        A :class:`WorkerRole`.

    Raises:
        ValueError: saying what is missing or wrong (not JSON, no
            ``cluster.worker`` list, an index out of range, ...).
    """
    if not text or not text.strip():
        raise ValueError(f"strategy 'multiworker' needs the {TF_CONFIG} environment variable describing the "
                         f"cluster and this worker's place in it, e.g. {_EXAMPLE} (see docs/DISTRIBUTED.md)")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        _fail(f"TF_CONFIG is not valid JSON ({error})", text)
    if not isinstance(value, dict):
        _fail('TF_CONFIG must be a JSON object with "cluster" and "task"', text)
    cluster = value.get("cluster")
    if not isinstance(cluster, dict) or "worker" not in cluster:
        _fail('TF_CONFIG needs a "cluster" object with a "worker" list of "host:port" addresses', text)
    others = sorted(set(cluster) - {"chief", "worker"})
    if others:
        _fail(f"TF_CONFIG cluster lists {', '.join(map(repr, others))} tasks; MultiWorkerMirroredStrategy uses "
              'only "chief" (optional, one) and "worker"', text)
    addresses = {kind: _check_addresses(kind, cluster[kind], text) for kind in ("chief", "worker") if kind in cluster}
    if len(addresses.get("chief", [])) > 1:
        _fail("TF_CONFIG cluster.chief must list exactly one address", text)
    everything = [address for kind in addresses for address in addresses[kind]]
    repeated = sorted({address for address in everything if everything.count(address) > 1})
    if repeated:
        _fail(f"TF_CONFIG lists {', '.join(repeated)} more than once; every task needs its own port", text)
    task = value.get("task")
    if not isinstance(task, dict):
        _fail('TF_CONFIG needs a "task" object saying which process this is, '
              'e.g. {"type": "worker", "index": 0}', text)
    task_type, index = task.get("type"), task.get("index")
    if task_type not in addresses:
        _fail(f"TF_CONFIG task.type must be one of the cluster's task types "
              f"({', '.join(map(repr, addresses))}), not {task_type!r}", text)
    if isinstance(index, bool) or not isinstance(index, int):
        _fail(f"TF_CONFIG task.index must be an integer, not {index!r}", text)
    count = len(addresses[task_type])
    if not 0 <= index < count:
        _fail(f"TF_CONFIG task.index {index} is out of range: cluster.{task_type} lists {count} "
              f"address{'es' if count > 1 else ''} (indices 0 to {count - 1})", text)
    # Without a "chief" entry, worker 0 plays the chief (TensorFlow's convention).
    is_chief = task_type == "chief" or ("chief" not in addresses and index == 0)
    return WorkerRole("chief" if is_chief else "worker", index, len(everything))


def worker_role(strategy: str, environ=None) -> WorkerRole:
    """This process's role for ``strategy``; TF_CONFIG matters only for ``multiworker``.

    Raises:
        ValueError: for an unknown strategy or a missing or malformed TF_CONFIG.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {', '.join(STRATEGIES)}. Received: strategy={strategy!r}")
    if strategy != "multiworker":
        return WorkerRole()
    return parse_tf_config((os.environ if environ is None else environ).get(TF_CONFIG))


def get_strategy(strategy: str):
    """The ``tf.distribute.Strategy`` for ``strategy``, created once per process.

    ``none`` is TensorFlow's default strategy; ``mirrored`` replicates over
    every local GPU, or runs on the CPU (logging a warning) when there is
    none; ``multiworker`` joins the TF_CONFIG cluster.  Call this before any
    other TensorFlow op when ``strategy="multiworker"``: collective ops can
    only be configured at program start-up.
    """
    import tensorflow as tf

    from textclf.fitting import log

    worker_role(strategy)  # Checks the name and TF_CONFIG before TensorFlow does.
    if strategy not in _strategies:
        if strategy == "none":
            _strategies[strategy] = tf.distribute.get_strategy()
        elif strategy == "mirrored":
            gpus = tf.config.list_physical_devices("GPU")
            if not gpus:
                log("warning: strategy 'mirrored' found no GPU, so it trains on the CPU with a single replica "
                    "(like strategy 'none')")
                _strategies[strategy] = tf.distribute.MirroredStrategy(devices=["/cpu:0"])
            else:
                _strategies[strategy] = tf.distribute.MirroredStrategy()
                log(f"strategy 'mirrored': {len(gpus)} GPU replica{'s' if len(gpus) > 1 else ''}")
        else:
            _strategies[strategy] = tf.distribute.MultiWorkerMirroredStrategy()
            log(f"strategy 'multiworker': this is {worker_role(strategy).describe()}, "
                f"{_strategies[strategy].num_replicas_in_sync} replicas in all")
    return _strategies[strategy]
