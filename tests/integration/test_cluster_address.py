"""`hpo run --address` against a Ray cluster started on its own with `ray start --head`."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

EXPERIMENT = textwrap.dedent(
    """
    from pathlib import Path
    from hpo.space import Float

    space = {"x": Float(0.0, 1.0), "out": OUT}

    def objective(params, report):
        import ray
        address = ray.get_runtime_context().gcs_address
        Path(params["out"], f"{params['x']}.txt").write_text(address)
        report(0, loss=params["x"])
        return params["x"]
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_trials_run_on_the_cluster_at_the_address(tmp_path, hpo_env):
    ray_bin = Path(sys.executable).with_name("ray")
    port = _free_port()
    env = {**hpo_env, "RAY_AUTH_MODE": "token"}
    # Ray's Unix sockets live under --temp-dir, whose path must stay short (107 bytes).
    ray_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    log = open(tmp_path / "head.log", "w")  # noqa: SIM115 - closed in finally
    head = subprocess.Popen(
        [
            str(ray_bin),
            "start",
            "--head",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--block",
            f"--temp-dir={ray_dir}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out = tmp_path / "seen"
        out.mkdir()
        (tmp_path / "remote.py").write_text(EXPERIMENT.replace("OUT", repr(str(out))))
        address = f"127.0.0.1:{port}"
        done = None
        for _ in range(3):  # the head may still be starting
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "hpo.cli",
                    "run",
                    "remote.py",
                    "--trials",
                    "4",
                    "--address",
                    address,
                    "--no-progress",
                ],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=240,
            )
            if done.returncode == 0:
                break
            time.sleep(5)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "4 trials, 4 complete" in done.stdout
        # The GCS reports the machine's address, not loopback; its port is this cluster's.
        seen_ports = {p.read_text().rsplit(":", 1)[1] for p in out.iterdir()}
        assert seen_ports == {str(port)}
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)
        log.close()
        shutil.rmtree(ray_dir, ignore_errors=True)
