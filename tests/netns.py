"""Hosts that can vanish: Linux network namespaces on a private bridge (root only).

A machine that loses power or its network closes nothing: no FIN, no RST, and its peers'
sockets stay open until a timeout or a keepalive notices. Killing a process or stopping a
container does not reproduce that (the kernel closes the sockets it held). A namespace whose
processes are frozen and whose packets are dropped does: `Host.cut()`.

Each Network claims a /24 in 10.231.X.0/24 by creating the bridge `sidecarX`: `ip link add`
fails when another run (live or leftover) holds X, so parallel runs never share names.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import string
import subprocess
import time
from typing import Any

from tests.pgserver import proc_stat

PREFIX = "sidecar"
SUBNET = "10.231"
DROP_RULES = (["INPUT", "-j", "DROP"], ["OUTPUT", "-j", "DROP"])


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and done.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done


def namespaces() -> list[str]:
    """`ip netns list`'s names (it prints "name (id: N)" for namespaces with a peer id)."""
    return [line.split()[0] for line in run("ip", "netns", "list").stdout.splitlines() if line.strip()]


class Host:
    """One namespace on the bridge: its own address, its own processes, its own firewall."""

    def __init__(self, name: str, address: str, veth: str) -> None:
        self.name, self.address, self.veth = name, address, veth
        self.processes: list[subprocess.Popen[Any]] = []
        self.is_cut = False

    def run(self, argv: list[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
        """Start `argv` inside this host (as root: `ip netns exec` needs it)."""
        process = subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **popen_kwargs)
        self.processes.append(process)
        return process

    def pids(self) -> list[int]:
        """Every process in the namespace, whoever started it (a server's forked children too)."""
        return [int(p) for p in run("ip", "netns", "pids", self.name, check=False).stdout.split()]

    def _signal_all(self, sig: int, until_state: str | None = None) -> None:
        """Signal every process; with `until_state`, again until none is outside it (a process
        may fork while we look). Bounded: a few hundred rounds at most."""
        for _ in range(300):
            pending = []
            for pid in self.pids():
                with contextlib.suppress(OSError):
                    if until_state is None or proc_stat(pid)[0] not in (until_state, "Z"):
                        os.kill(pid, sig)
                        pending.append(pid)
            if not pending or until_state is None:
                return
            time.sleep(0.01)
        raise RuntimeError(f"{self.name}: processes kept escaping signal {sig}")

    def cut(self) -> None:
        """The host vanishes: its processes freeze (SIGSTOP) before anything can react, then
        every packet in or out is dropped. Nothing is closed, so peers hear nothing at all."""
        self._signal_all(signal.SIGSTOP, until_state="T")
        for rule in DROP_RULES:
            run("ip", "netns", "exec", self.name, "iptables", "-A", *rule)
        self.is_cut = True

    def restore(self) -> None:
        """The host comes back: packets flow, processes resume where they were."""
        for rule in DROP_RULES:
            run("ip", "netns", "exec", self.name, "iptables", "-D", *rule, check=False)
        self._signal_all(signal.SIGCONT)
        self.is_cut = False

    def destroy(self) -> None:
        """Kill everything in the namespace, then delete it (which deletes its veth pair)."""
        for _ in range(100):
            if not self.pids():
                break
            self._signal_all(signal.SIGKILL)  # reaches stopped processes too
            time.sleep(0.02)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe:
                    with contextlib.suppress(OSError):
                        pipe.close()
        if self.name in namespaces():
            run("ip", "netns", "delete", self.name)
        run("ip", "link", "delete", self.veth, check=False)


class Network:
    """A bridge `sidecarX` and `hosts` namespaces on 10.231.X.0/24: host i (a, b, ...) is
    10.231.X.(i+1); the bridge itself is .254, so the test process can reach every host."""

    def __init__(self, hosts: int = 2) -> None:
        assert 1 <= hosts <= 26
        self.x = self._claim()
        self.bridge = f"{PREFIX}{self.x}"
        # Bridged packets pass the host's FORWARD chain when br_netfilter is loaded, and Docker
        # sets its policy to DROP: let this bridge's own traffic through.
        self.forward_rule = ["FORWARD", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"]
        self.hosts: list[Host] = []
        self.closed = False
        try:
            run("ip", "addr", "add", f"{SUBNET}.{self.x}.254/24", "dev", self.bridge)
            run("ip", "link", "set", self.bridge, "up")
            run("iptables", "-I", *self.forward_rule)
            for i, letter in enumerate(string.ascii_lowercase[:hosts]):
                self._add_host(letter, f"{SUBNET}.{self.x}.{i + 1}")
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _claim() -> int:
        """A free X: no address of the machine in 10.231.X, no namespace named for it, and
        the bridge name ours (creating it is the atomic part)."""
        in_use = run("ip", "-4", "-o", "addr").stdout
        names = namespaces()
        for x in random.sample(range(1, 254), 253):
            if f" {SUBNET}.{x}." in in_use or any(n.startswith(f"{PREFIX}{x}-") for n in names):
                continue
            if run("ip", "link", "add", f"{PREFIX}{x}", "type", "bridge", check=False).returncode == 0:
                return x
        raise RuntimeError(f"no free subnet in {SUBNET}.0.0/16")

    def _add_host(self, letter: str, address: str) -> None:
        """A namespace with a veth pair: one end on the bridge, the other inside with `address`."""
        name, veth, inside = f"{self.bridge}-{letter}", f"{self.bridge}{letter}", f"{self.bridge}{letter}-in"
        run("ip", "netns", "add", name)
        self.hosts.append(Host(name, address, veth))  # from here on, close() removes it
        run("ip", "link", "add", veth, "type", "veth", "peer", "name", inside)
        run("ip", "link", "set", inside, "netns", name)
        run("ip", "link", "set", veth, "master", self.bridge, "up")
        run("ip", "-n", name, "addr", "add", f"{address}/24", "dev", inside)
        run("ip", "-n", name, "link", "set", inside, "up")
        run("ip", "-n", name, "link", "set", "lo", "up")

    def names(self) -> list[str]:
        """Everything this network created, as `ip` names it: for leftover checks."""
        return [self.bridge, *(h.name for h in self.hosts), *(h.veth for h in self.hosts)]

    def close(self) -> None:
        """Remove every namespace, veth, rule and the bridge. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        for host in self.hosts:
            host.destroy()
        run("iptables", "-D", *self.forward_rule, check=False)
        run("ip", "link", "delete", self.bridge, check=False)

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
