"""Starting embedded Ray, or connecting to a cluster, with safe defaults.

Embedded Ray is always a new local instance (never a cluster that ``ray start`` left running),
every one of its processes (GCS, raylet, runtime-env agent, driver, workers) listens on 127.0.0.1
only, it has no dashboard and sends no usage statistics. ``address`` connects to an existing
cluster (``auto`` finds the one started on this node by ``ray start``).
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from collections.abc import Iterator

from automl.errors import AutomlError

QUIET_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    "RAY_DEDUP_LOGS": "0",
    "TUNE_MAX_PENDING_TRIALS_PG": "4",
}


class ClusterError(AutomlError):
    exit_code = 2


def ray_is_running() -> bool:
    """Ray is initialised in this process (without importing Ray when it is not)."""
    ray = sys.modules.get("ray")  # not imported yet: certainly not running
    return ray is not None and ray.is_initialized()


def quiet_environment() -> None:
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


def start_embedded_ray(num_cpus: int | None = None, verbose: bool = False) -> None:
    """Start a new local Ray instance the way automl does: loopback only, no dashboard, quiet.

    ``address="local"``: never join a cluster that ``ray start`` left in Ray's temp dir (a plain
    ``ray.init()`` would), nor the one ``RAY_ADDRESS`` names; joining is ``--address``.
    """
    quiet_environment()
    import ray

    with _single_machine_ray():
        ray.init(address="local", num_cpus=num_cpus, _node_ip_address="127.0.0.1",
                 include_dashboard=False, log_to_driver=verbose,
                 logging_level=logging.INFO if verbose else logging.ERROR)


@contextmanager
def _single_machine_ray() -> Iterator[None]:
    """Ray's "single-machine" mode (its default on macOS and Windows, where
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` is unset) for the duration of the start: the node's
    address is 127.0.0.1, and Ray's gRPC servers (GCS, raylet, every core worker) then bind
    127.0.0.1 instead of 0.0.0.0. ``_node_ip_address="127.0.0.1"`` alone does not do it:
    ``ray.init`` replaces a loopback address with the machine's external one.

    Ray reads that environment variable once, at import, into a module constant; setting the
    constant (and restoring it) keeps a later ``--address`` connection in the same process
    advertising the driver's real address.
    """
    from ray._private import ray_constants

    if not hasattr(ray_constants, "ENABLE_RAY_CLUSTER"):  # another Ray: tests/test_ray_session
        yield                                             # checks the sockets it opens
        return
    enabled = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = enabled


@contextmanager
def ray_session(address: str | None, num_cpus: int | None = None,
                verbose: bool = False) -> Iterator[None]:
    """Use Ray for the duration of the block; starts (and stops) embedded Ray if needed."""
    quiet_environment()
    import ray

    if not verbose:
        # Trial failures are recorded in the store and shown by our progress lines.
        for name in ("ray.tune", "ray.train", "ray.air"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    if ray.is_initialized():
        yield
        return
    start_ray(address, verbose=verbose, num_cpus=num_cpus)
    try:
        yield
    finally:
        ray.shutdown()


def start_ray(address: str | None, verbose: bool = False, num_cpus: int | None = None) -> None:
    """Start embedded Ray (``address`` None) or connect to a cluster; a failure is one
    :class:`ClusterError` that says which."""
    quiet_environment()
    import ray

    try:
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=verbose,
                     logging_level=logging.INFO if verbose else logging.ERROR)
        else:
            start_embedded_ray(num_cpus, verbose)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at '{address}'" if address else "embedded Ray"
        hint = ("; if the cluster uses token authentication, set RAY_AUTH_MODE=token (and "
                "RAY_AUTH_TOKEN_PATH if the token is not in ~/.ray/auth_token)") if address else ""
        raise ClusterError(f"cannot start or reach {where}: {str(exc).splitlines()[0]}"
                           f"{hint}") from None


def check_resources(cpu: float, gpu: float, workers: int = 1, strict: bool = True
                    ) -> str | None:
    """Fail early when the cluster could never run one trial (a trial would wait forever): a
    node must fit one worker (``cpu``/``gpu`` each), the nodes together ``workers`` of them.

    With ``strict=False`` (a cluster reached through ``--address``, which an autoscaler may grow)
    the problem is returned as a warning instead.
    """
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    fit = [_workers_on(n["Resources"], cpu, gpu) for n in nodes]
    if sum(fit) < workers:
        total_gpu = sum(n["Resources"].get("GPU", 0) for n in nodes)
        most_cpu = max((n["Resources"].get("CPU", 0) for n in nodes), default=0)
        asks = f"cpu={cpu:g}, gpu={gpu:g}" + (f" per worker, {workers} workers" if workers > 1
                                              else "")
        message = (f"resources: a trial asks for {asks}, but no Ray node has "
                   f"that much (largest node: {most_cpu:g} CPUs; cluster GPUs: {total_gpu:g})")
        if strict:
            raise ClusterError(message)
        return message + "; trials wait until the autoscaler adds such a node"
    return None


def _workers_on(resources: dict[str, float], cpu: float, gpu: float) -> int:
    """How many workers of ``cpu``/``gpu`` fit on a node with ``resources``."""
    fits = resources.get("CPU", 0) // cpu
    if gpu > 0:
        fits = min(fits, resources.get("GPU", 0) // gpu)
    return int(fits)


def check_local_resources(cpu: float, gpu: float, workers: int = 1) -> None:
    """Before embedded Ray starts: refuse a trial that this machine could never run
    (``workers`` processes of ``cpu``/``gpu`` each).

    Ray would start, then wait forever for a node that has the resources; this fails in a second
    instead. (With ``--address``, :func:`check_resources` asks the cluster once it is reached.)
    """
    cpus = os.cpu_count() or 1
    gpus = _local_gpu_count() if gpu > 0 else 0
    if cpu * workers > cpus or gpu * workers > gpus:
        asks = f"cpu={cpu:g}, gpu={gpu:g}" + (f" per worker, {workers} workers" if workers > 1
                                              else "")
        raise ClusterError(
            f"resources: a trial asks for {asks}, but this machine has {cpus} "
            f"CPUs and {gpus} GPUs; lower resources in the experiment, or run on a Ray cluster "
            "that has them (--address)")


def _local_gpu_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0
