"""Separate hosts on one machine: a Linux network namespace per host, each with a private
address on a bridge of its own and a hosts file naming the others (what compose's service
names give containers). Made and removed by the tests that use them; needs root.

Everything started on a host is started through `ip netns exec`, so every process of the
host is in its namespace: `Hosts.kill` takes them all (a lost machine), found by the
namespace's process ids, never by name. Like containers, each command on a host sees only
its own processes (a PID namespace) and has its own /tmp/ray; the rest of this machine's
file system is shared. Ray looks for "the node on this machine" among the processes it sees
and in /tmp/ray: without these, a driver would take the head node on another host for its
own and tell the workers an address where it does not listen.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import socketserver
import subprocess
import threading
import time
from pathlib import Path

HOSTS_DIR = Path("/etc/netns")  # `ip netns exec` mounts /etc/netns/NAME/hosts on /etc/hosts


def available() -> str | None:
    """Why namespace hosts cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "namespace hosts need root"
    if shutil.which("ip") is None:
        return "namespace hosts need iproute2's ip"
    if Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() != "0":
        return "this machine forwards IP packets: namespace hosts could reach beyond it"
    probe = f"hpo-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot make a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str, ns: str | None = None) -> None:
    command = ["ip", *(["-n", ns] if ns else []), *args]
    subprocess.run(command, check=True, capture_output=True, text=True)


def _free_subnet() -> str:
    """A 10.x.y.0/24 not routed on this machine, as "10.x.y"."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    for third in range(200, 250):
        prefix = f"10.213.{third}"
        if f"{prefix}." not in routes:
            return prefix
    raise RuntimeError("no free 10.213.x.0/24 subnet for the namespace hosts")


class Hosts:
    """Hosts ``names`` on a private bridge; ``address[name]`` is each one's address."""

    def __init__(self, names: list[str], root: Path) -> None:
        self.root = root  # each host's own /tmp/ray is a folder below it
        self.tag = f"h{os.getpid() % 100000}"
        self.bridge = f"br-{self.tag}"
        prefix = _free_subnet()
        self.gateway = f"{prefix}.1"  # the bridge's own address: this (the test's) host
        self.address = {name: f"{prefix}.{i + 2}" for i, name in enumerate(names)}
        self.procs: list[subprocess.Popen] = []
        self.made: list[str] = []
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            hosts_file = "127.0.0.1 localhost\n" + "".join(
                f"{ip} {name}\n" for name, ip in self.address.items()
            )
            for i, name in enumerate(names):
                self._add(name, i, hosts_file)
        except BaseException:
            self.close()
            raise

    def ns(self, name: str) -> str:
        return f"{self.tag}-{name}"

    def home(self, name: str) -> Path:
        """The folder host ``name``'s services start in (a container's working folder)."""
        home = self.root / f"home-{name}"
        home.mkdir(exist_ok=True)
        return home

    def on(self, name: str, argv: list[str]) -> list[str]:
        """``argv`` as run on host ``name``: in its network namespace, in a PID namespace
        of its own (all of it dies with ``argv``), with the host's own /tmp/ray bound in
        the command's mount namespace (the bind goes no further)."""
        own = self.root / f"tmp-ray-{name}"
        own.mkdir(exist_ok=True)
        Path("/tmp/ray").mkdir(exist_ok=True)
        isolated = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
        private = 'mount --bind "$0" /tmp/ray && exec "$@"'
        return [
            "ip",
            "netns",
            "exec",
            self.ns(name),
            *isolated,
            "sh",
            "-c",
            private,
            str(own),
            *argv,
        ]

    def _add(self, name: str, i: int, hosts_file: str) -> None:
        ns, outside, inside = self.ns(name), f"v{self.tag}o{i}", f"v{self.tag}i{i}"
        _ip("netns", "add", ns)
        self.made.append(ns)
        (HOSTS_DIR / ns).mkdir(parents=True, exist_ok=True)
        (HOSTS_DIR / ns / "hosts").write_text(hosts_file)
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", ns)
        _ip("link", "set", outside, "master", self.bridge)
        _ip("link", "set", outside, "up")
        _ip("addr", "add", f"{self.address[name]}/24", "dev", inside, ns=ns)
        _ip("link", "set", inside, "up", ns=ns)
        _ip("link", "set", "lo", "up", ns=ns)
        # A default route through this host, which does not forward (checked by
        # `available`): programs find their address by it (Ray does), and nothing leaves.
        _ip("route", "add", "default", "via", self.gateway, ns=ns)

    def start(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        """Run ``argv`` on host ``name`` in the background, its output in ``log``."""
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                self.on(name, argv),
                env=env,
                cwd=self.home(name),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def run(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        timeout: float = 300,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` on host ``name`` to its end."""
        return subprocess.run(
            self.on(name, argv),
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def confine(self, name: str, reachable: list[tuple[str, int]]) -> None:
        """Host ``name`` may open connections only to ``reachable`` (host, TCP port) pairs
        and itself: a machine outside the deployment's network that sees only what is
        published to it. Others are refused at once (a firewall's reject)."""
        ns, rules = self.ns(name), [["-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT"]]
        for host, port in reachable:
            rules.append(["-A", "OUTPUT", "-d", self.address[host], "-p", "tcp"])
            rules[-1] += ["--dport", str(port), "-j", "ACCEPT"]
        rules.append(["-A", "OUTPUT", "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"])
        rules.append(["-A", "OUTPUT", "-j", "REJECT"])
        for rule in rules:
            command = ["ip", "netns", "exec", ns, "iptables", *rule]
            subprocess.run(command, check=True, capture_output=True, text=True)

    def remove(self, name: str) -> None:
        """Host ``name`` is gone: its processes killed, its namespace deleted."""
        self.kill(name)
        ns = self.ns(name)
        subprocess.run(["ip", "netns", "del", ns], check=True, capture_output=True)
        shutil.rmtree(HOSTS_DIR / ns, ignore_errors=True)
        self.made.remove(ns)

    def pids(self, name: str) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.ns(name)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def kill(self, name: str) -> int:
        """SIGKILL every process of host ``name`` (the machine is lost); how many."""
        killed = 0
        for _ in range(10):  # processes may fork while they are killed
            pids = self.pids(name)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        return killed

    def close(self) -> None:
        """Stop everything started on the hosts and remove the hosts and the bridge."""
        for ns in self.made:
            self.kill(ns.removeprefix(f"{self.tag}-"))
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for ns in self.made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            shutil.rmtree(HOSTS_DIR / ns, ignore_errors=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        self.made = []


class _Relay(socketserver.BaseRequestHandler):
    """One connection to a published port, relayed to the service behind it."""

    def handle(self) -> None:
        try:
            upstream = socket.create_connection(self.server.target, timeout=5)
        except OSError:
            return  # the service is down: the client sees its connection closed
        with upstream:
            ends = [self.request, upstream]
            while True:
                readable, _, _ = select.select(ends, [], [], 30)
                if not readable:
                    return  # idle for 30 s: the relay ends by itself
                for end in readable:
                    data = end.recv(65536)
                    if not data:
                        return
                    (upstream if end is self.request else self.request).sendall(data)


class Published(socketserver.ThreadingTCPServer):
    """A port published as Docker publishes one: ``listen`` (an address and port of this
    machine, the Docker host) forwards each connection to ``target`` on a namespace host."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        super().__init__(listen, _Relay)
        self.target = target
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
