"""``vla-eval run --policy-server auto``: one batching policy server for all env workers of a run.

The run's policy is loaded once, in a server (its own process locally, one actor under
Ray; on the GPU when there is one, since policies pick ``device: auto``), and every env
worker gets a :class:`~vla_eval.remote.openpi_policy.RemotePolicy` pointed at it over loopback
(or the server node's address on a Ray cluster).  The workers' remote config mirrors what
the served policy needs (images, depth, privileged state) and takes the action space from
each reply, so the records are those of an in-process run.

Faults: the executor calls :meth:`check` between events and before it replaces a dead
worker.  A server that died is restarted once (a local one on the same port); the episodes
that were in flight lose their server-side state, so their workers raise
:class:`~vla_eval.errors.RetryEpisode` and report them as lost; the scheduling loop reruns them on a
fresh worker without charging the attempt (the episode did nothing wrong).  A second death ends the run
with a clear error; finished
episodes are stored and ``--resume`` continues.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from vla_eval.errors import VlaEvalError
from vla_eval.policy_config import PolicyConfig

START_TIMEOUT_S = 900.0
"""Loading a 7B checkpoint from a cold disk takes minutes; a hung start still ends."""

MAX_RESTARTS = 1


def client_policy(
    served: PolicyConfig, uri: str, ray_actor: str | None = None, image_orientation: str | None = None
) -> PolicyConfig:
    """The remote config every env worker uses to reach the server holding ``served``.

    ``image_orientation`` is what the served policy declares (read from the server's metadata
    frame), so the harness converts images for the model exactly as in an in-process run.
    """
    from vla_eval.policies import POLICIES

    cls = POLICIES.get(served.adapter)
    args: dict[str, Any] = {
        "uri": uri,
        "ray_server_actor": ray_actor,
        "send_reset": True,
        "space_from_server": True,
        "send_privileged": bool(getattr(cls, "needs_privileged", False)),
        "needs_images": bool(getattr(cls, "needs_images", True)),
        "obs": {"kind": "vla_eval", "send_depth": bool(getattr(cls, "needs_depth", False))},
        "server_lost": "retry_episode",
        "max_retries": 0,  # a reconnect mid-episode would meet a server that lost the episode's state
        "wait_for_server_s": START_TIMEOUT_S,
        # a batch of big-model generations on a busy GPU; a dead server is noticed at once anyway
        "request_timeout": 600.0,
        "action_dim": getattr(getattr(cls, "action_space", None), "dim", 7),
    }
    orientation = image_orientation or served.args.get("image_orientation")
    if orientation:
        args["image_orientation"] = orientation
    return PolicyConfig(name=f"{served.name}@server", adapter="remote", args=args)


class LocalPolicyServer:
    """``vla-eval serve`` as a child process of the run, its output in ``RUN_DIR/policy_server.log``."""

    def __init__(
        self,
        served: PolicyConfig,
        run_dir: Path,
        max_batch: int,
        max_wait_ms: float = 15.0,
        host: str = "127.0.0.1",
        cpu_workers: int = 1,
        python: Path | None = None,
    ):
        self.served, self.run_dir = served, Path(run_dir)
        self.python = python
        """The policy's managed environment's interpreter (vla_eval/remote/policy_env.py); None: this one."""
        self.cpu_workers = cpu_workers
        self.max_batch, self.max_wait_ms, self.host = max(1, int(max_batch)), float(max_wait_ms), host
        self.port = 0
        self.restarts = 0
        self.proc: subprocess.Popen | None = None
        self.log_path = self.run_dir / "policy_server.log"

    @property
    def uri(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def start(self) -> "LocalPolicyServer":
        port_file = self.run_dir / "policy_server.port"
        port_file.unlink(missing_ok=True)
        cmd = [
            str(self.python or sys.executable),
            "-m",
            "vla_eval",
            "serve",
            "--policy-config-json",
            json.dumps(self.served.model_dump(mode="json")),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--port-file",
            str(port_file),
            "--max-batch",
            str(self.max_batch),
            "--max-wait-ms",
            f"{self.max_wait_ms:g}",
            "--exit-with-parent",
            str(os.getpid()),
        ]
        log = open(self.log_path, "a")
        try:
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=_server_env(self.cpu_workers, foreign=self.python is not None),
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_file.exists():
            if self.proc.poll() is not None:
                raise VlaEvalError(
                    f"the policy server exited while starting (exit code {self.proc.returncode}); "
                    f"its output:\n{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise VlaEvalError(f"the policy server did not start within {START_TIMEOUT_S:g}s; see {self.log_path}")
            time.sleep(0.05)
        self.port = int(port_file.read_text().strip())
        return self

    def check(self) -> PolicyConfig | None:
        """Restart a dead server once (same port, so workers' URIs stay valid); raise if it died again."""
        if self.proc is None or self.proc.poll() is None:
            return None
        code = self.proc.returncode
        if self.restarts >= MAX_RESTARTS:
            raise VlaEvalError(
                f"the policy server died again (exit code {code}) after {self.restarts} restart(s); finished episodes "
                f"are stored, continue with --resume. Its output:\n{self._log_tail()}"
            )
        self.restarts += 1
        print(
            f"\npolicy server died (exit code {code}); restarting it on port {self.port}; "
            "episodes in flight will be rerun",
            file=sys.stderr,
            flush=True,
        )
        self.start()
        return None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "process",
            "uri": self.uri,
            "restarts": self.restarts,
            "max_batch": self.max_batch,
            "max_wait_ms": self.max_wait_ms,
            "log": str(self.log_path),
            "python": str(self.python or sys.executable),
        }

    def _log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


def _server_env(cpu_workers: int, foreign: bool = False) -> dict[str, str]:
    """The run's environment plus its import path, so a ``module:Class`` policy the run can
    import (a plugin, a test double) is importable in the server too.

    A server in a policy's managed environment gets only the harness package on its path
    (:func:`vla_eval.environments.interpreter_env`): this interpreter's site-packages would
    shadow the environment's own torch and numpy.

    CPU threads: the env workers already hold one core each, and a CPU model whose OpenMP
    threads outnumber the free cores spins at every op (measured here: the tiny Qwen2.5-VL
    ran 7x slower served with default threads next to busy workers than in a one-thread
    worker).  So the server gets the cores the workers leave, at least one, unless the user
    set ``OMP_NUM_THREADS`` (a GPU model barely uses CPU threads either way)."""
    if foreign:
        from vla_eval.environments import interpreter_env

        env = interpreter_env({"PYTHONUNBUFFERED": "1"})
    else:
        path = [p for p in sys.path if p] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join(dict.fromkeys(path)))
    if "OMP_NUM_THREADS" not in os.environ:
        threads = str(max(1, (os.cpu_count() or 1) - cpu_workers))
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
    return env


class _ServerActor:
    """The policy server inside a Ray actor (its GPU, if the cluster has one)."""

    def __init__(self, served_json: str, host: str | None, max_batch: int, max_wait_ms: float):
        from vla_eval.remote.server import PolicyServer

        served = PolicyConfig.model_validate(json.loads(served_json))
        if host is None:
            import ray

            host = ray.util.get_node_ip_address()
        self.policy = served.create()
        self.server = PolicyServer(
            self.policy,
            host=host,
            port=0,
            metadata={"policy_name": served.name},
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
        )
        self.server.start_in_thread()

    def url(self) -> str:
        return self.server.url

    def stats(self) -> dict[str, Any]:
        return dict(self.server.stats)

    def stop(self) -> None:
        self.server.shutdown()
        self.policy.close()


class RayPolicyServer:
    """One named server actor.  A replacement after a crash may land on another node with
    another port, so env actors look the address up by the actor's name whenever they
    (re)start, instead of holding a URI that may be stale."""

    def __init__(self, served: PolicyConfig, max_batch: int, max_wait_ms: float = 5.0, cluster: bool = False):
        import uuid

        self.served, self.max_batch, self.max_wait_ms = served, max(1, int(max_batch)), float(max_wait_ms)
        self.host = None if cluster else "127.0.0.1"  # on a cluster, env actors on other nodes must reach it
        self.name = f"vla_eval_policy_server_{uuid.uuid4().hex[:12]}"
        self.restarts = 0
        self.actor = None
        self.uri = ""

    def start(self) -> "RayPolicyServer":
        import ray

        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        # num_cpus=0: the server must not hold a CPU slot an env actor is waiting for
        cls = ray.remote(num_cpus=0, num_gpus=gpus, max_restarts=0)(_ServerActor).options(name=self.name)
        self.gpus = gpus
        args = (json.dumps(self.served.model_dump(mode="json")), self.host, self.max_batch, self.max_wait_ms)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.actor = cls.remote(*args)
                break
            except ValueError:  # the dead actor's name is released asynchronously
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        try:
            self.uri = ray.get(self.actor.url.remote(), timeout=START_TIMEOUT_S)
        except Exception as exc:
            raise VlaEvalError(f"the policy server actor did not start: {type(exc).__name__}: {exc}") from exc
        return self

    def check(self) -> PolicyConfig | None:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        try:
            ray.get(self.actor.stats.remote(), timeout=30)
            return None
        except GetTimeoutError:
            return None  # alive but busy
        except RayActorError as exc:
            if self.restarts >= MAX_RESTARTS:
                raise VlaEvalError(
                    f"the policy server actor died again ({type(exc).__name__}); finished episodes are "
                    "stored, continue with --resume"
                ) from exc
        self.restarts += 1
        print(
            "\npolicy server actor died; starting a new one; episodes in flight will be rerun",
            file=sys.stderr,
            flush=True,
        )
        ray.kill(self.actor, no_restart=True)  # frees its name for the replacement
        self.start()
        return None  # env actors find the new one by name

    def stop(self) -> None:
        import ray

        if self.actor is None:
            return
        try:
            ray.get(self.actor.stop.remote(), timeout=30)
        except Exception:
            pass
        ray.kill(self.actor, no_restart=True)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "ray_actor",
            "uri": self.uri,
            "gpus": getattr(self, "gpus", 0),
            "restarts": self.restarts,
            "max_batch": self.max_batch,
            "max_wait_ms": self.max_wait_ms,
        }


def serve_for_run(executor, served: PolicyConfig, run_dir: Path, max_batch: int, python: Path | None = None):
    """Start the run's server and point ``executor``'s workers at it; the caller stops it.

    ``python``: the policy's managed environment's interpreter (a local server process runs it)."""
    from dataclasses import replace

    if python is not None and getattr(executor, "ray_init", None) is not None:
        raise VlaEvalError(
            f"policy {served.name} runs in its own environment ({python}), which a Ray server actor cannot use; "
            f"start `{python} -m vla_eval serve --policy ...` yourself and run with --policy remote --policy-arg "
            "uri=ws://HOST:PORT"
        )
    if getattr(executor, "ray_init", None) is not None:
        executor.ray_init()
        server: LocalPolicyServer | RayPolicyServer = RayPolicyServer(served, max_batch, cluster=bool(executor.address))
    else:
        server = LocalPolicyServer(
            served, run_dir, max_batch, cpu_workers=getattr(executor, "n_workers", 1), python=python
        )
    server.start()
    orientation = _served_orientation(server.uri)
    executor.config = replace(
        executor.config, policy=client_policy(served, server.uri, getattr(server, "name", None), orientation)
    )
    executor.supervisor = server
    return server


def _served_orientation(uri: str) -> str | None:
    """The image orientation the server's policy declares (its metadata frame), if it says."""
    from vla_eval.remote.client import RemotePolicyClient

    try:
        client = RemotePolicyClient(uri, connect_timeout=START_TIMEOUT_S)
        try:
            return (client.connect() or {}).get("image_orientation")
        finally:
            client.close()
    except Exception:
        return None
