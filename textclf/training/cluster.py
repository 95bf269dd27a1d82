"""Which tf.distribute strategy a run uses, and this process's place in a cluster.

``strategy="multiworker"`` reads the cluster from ``TF_CONFIG`` (docs/DISTRIBUTED.md).  The chief (task ``chief``,
or worker 0 when the cluster lists no chief) is the one process that writes the run folder and the export.
``TF_CONFIG`` is checked here first, so a mistake is a ``ValueError`` naming it rather than a worker waiting
forever for peers that will never come.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket

from textclf.config import STRATEGIES
from textclf.log import log
from textclf.errors import TextclfError

TF_CONFIG = "TF_CONFIG"
_EXAMPLE = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
            '"task": {"type": "worker", "index": 0}}\'')
# Seconds a worker waits for the other workers of TF_CONFIG before it gives up (environment variable).
CLUSTER_TIMEOUT = "TEXTCLF_CLUSTER_TIMEOUT"
DEFAULT_CLUSTER_TIMEOUT = 600.0
# MultiWorkerMirroredStrategy can be created once per process, before any
# other TensorFlow op; every later request must get the same object.
_strategies: dict = {}


@dataclasses.dataclass(frozen=True)
class WorkerRole:
    """This process's place in the run (a single process is the chief; ``workers`` counts the cluster's processes)."""

    task_type: str = "chief"
    index: int = 0
    workers: int = 1

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run folder, the checkpoints and the export."""
        return self.task_type == "chief"


def _fail(message: str, text: str):
    shown = text if len(text) <= 300 else text[:300] + "..."
    raise TextclfError(f"{message}. Received: TF_CONFIG={shown!r}")


def _check_addresses(kind: str, addresses, text: str) -> list[str]:
    if not isinstance(addresses, list) or not addresses:
        _fail(f'TF_CONFIG cluster.{kind} must be a non-empty list of "host:port" addresses', text)
    for position, address in enumerate(addresses):
        host, _, port = address.rpartition(":") if isinstance(address, str) else ("", "", "")
        if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
            _fail(f'TF_CONFIG cluster.{kind}[{position}] must be a "host:port" address with a port '
                  f"from 1 to 65535, not {address!r}", text)
    return addresses


def parse_tf_config(text: str | None) -> WorkerRole:
    """This task's role from a ``TF_CONFIG`` value (``None`` when unset); a ``ValueError`` says what is wrong."""
    if not text or not text.strip():
        raise TextclfError(f"strategy 'multiworker' needs the {TF_CONFIG} environment variable describing the "
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


def worker_role(strategy: str) -> WorkerRole:
    """This process's role for ``strategy`` (checked); TF_CONFIG matters only for ``multiworker``."""
    if strategy not in STRATEGIES:
        raise TextclfError(f"`strategy` must be one of {', '.join(STRATEGIES)}. Received: strategy={strategy!r}")
    if strategy != "multiworker":
        return WorkerRole()
    return parse_tf_config(os.environ.get(TF_CONFIG))


def get_strategy(strategy: str):
    """The ``tf.distribute.Strategy`` for ``strategy``, created once per process.

    ``mirrored`` replicates over every local GPU, or runs on the CPU (with a warning) when there is none.  Call this
    before any other TensorFlow op with ``multiworker``: collective ops can only be configured at program start-up.
    """
    import tensorflow as tf

    role = worker_role(strategy)  # Checks the name and TF_CONFIG before TensorFlow does.
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
            _strategies[strategy] = _join_cluster(tf.distribute.MultiWorkerMirroredStrategy)
            log(f"strategy 'multiworker': this is {role.task_type} {role.index} ({role.workers} processes), "
                f"{_strategies[strategy].num_replicas_in_sync} replicas in all")
    return _strategies[strategy]


# The watchdog runs in its own process: while MultiWorkerMirroredStrategy() waits for the other workers it
# holds the GIL in C++, so no thread of this process (and no Python signal handler) runs.  Arguments: the parent's
# PID, the timeout, then "name=host:port" per other task; file descriptor 3 carries the parent's signal numbers
# (Python's wakeup fd) and a 0 byte when the cluster has formed.
_WATCHDOG = r"""
import os, select, signal, socket, sys, time
parent, timeout, tasks = int(sys.argv[1]), float(sys.argv[2]), [t.split("=", 1) for t in sys.argv[3:]]
def say(text):
    os.write(2, (text + "\n").encode())
def answering(address):
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=1).close()
        return True
    except OSError:
        return False
def stop(number):
    say(f"stopped by {signal.Signals(number).name} while waiting for the other workers of TF_CONFIG")
    os.kill(parent, signal.SIGKILL)
    os._exit(128 + number)
signal.signal(signal.SIGINT, lambda *_: stop(signal.SIGINT))
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # The parent's SIGTERM arrives through fd 3.
started = time.monotonic()
while os.getppid() == parent:
    ready, _, _ = select.select([3], [], [], 10.0)
    if ready:
        data = os.read(3, 64)
        if not data or 0 in data:
            os._exit(0)
        for number in data:
            if number in (signal.SIGINT, signal.SIGTERM):
                stop(number)
    waited = time.monotonic() - started
    missing = ", ".join(f"{name} at {address}" for name, address in tasks if not answering(address))
    if waited >= timeout:
        say(f"textclf train: error: the other workers of TF_CONFIG did not all join within {timeout:g} s (not "
            f"answering: {missing or 'none, but the cluster did not form'}); start every worker, or raise "
            "TEXTCLF_CLUSTER_TIMEOUT")
        os.kill(parent, signal.SIGKILL)
        os._exit(2)
    say(f"waiting for the other workers of TF_CONFIG ({waited:.0f} s of {timeout:g} s); not answering yet: "
        f"{missing or 'none (connecting)'}")
"""


def _join_cluster(create):
    """``create()`` (MultiWorkerMirroredStrategy), which blocks in C++, holding the GIL, until every worker is up.

    The watchdog process (:data:`_WATCHDOG`, docs/DISTRIBUTED.md) reports and times out meanwhile, and ends this
    process on Ctrl-C: Python's C-level signal handler still writes the signal number to the wakeup descriptor.
    """
    import subprocess
    import sys

    timeout = float(os.environ.get(CLUSTER_TIMEOUT, DEFAULT_CLUSTER_TIMEOUT))
    value = json.loads(os.environ[TF_CONFIG])
    this_task = (value["task"]["type"], value["task"]["index"])
    # "worker 1=host2:2222" for every other task.
    others = [f"{kind} {index}={address}" for kind, addresses in value["cluster"].items()
              for index, address in enumerate(addresses) if (kind, index) != this_task]
    log(f"joining the TF_CONFIG cluster (up to {timeout:g} s; {CLUSTER_TIMEOUT} changes it)")
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(timeout), *others],
        pass_fds=(reader.fileno(),), preexec_fn=lambda: os.dup2(reader.fileno(), 3))
    previous = {number: signal.signal(number, lambda *_: None) for number in (signal.SIGINT, signal.SIGTERM)}
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    try:
        return create()
    finally:
        signal.set_wakeup_fd(previous_fd)
        for number, handler in previous.items():
            signal.signal(number, handler)
        writer.send(b"\0")  # The cluster formed (or creating it failed): the watchdog exits.
        watchdog.wait()
        reader.close()
        writer.close()
