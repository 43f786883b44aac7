"""Worker "hosts" on one machine: a Linux network namespace each, joined to this host by a veth pair.

Host ``i`` is the namespace ``dm<tag>h<i>`` holding ``10.231.<i>.2/30``; this host holds
``10.231.<i>.1/30`` on its end of the pair. The only route a namespace has beyond its own link is
to ``10.231.0.1`` (host 0's link address on this host, where the test's Redis listens), so the
workers' traffic goes nowhere but to that Redis. ``down``/``up`` cut a host's link from inside its
namespace; ``kill`` kills every process in it. ``close`` removes the namespaces and veths.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

SUBNET = "10.231"
SERVER = f"{SUBNET}.0.1"  # host 0's link address on this host: the test Redis binds it


def ip(*args: str, netns: str | None = None) -> str:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    done = subprocess.run([*prefix, "ip", *args], capture_output=True, text=True, timeout=10)
    if done.returncode:
        raise OSError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


class Hosts:
    """Namespaces, each a worker host that reaches ``SERVER`` over its own veth (``add(i)``)."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:5]
        self.names: list[str] = []
        self.links: list[str] = []  # the veth ends on this host

    def add(self, i: int) -> None:
        ns, here, there = f"dm{self.tag}h{i}", f"dm{self.tag}a{i}", f"dm{self.tag}b{i}"
        ip("netns", "add", ns)
        self.names.append(ns)
        ip("link", "add", here, "type", "veth", "peer", "name", there)
        self.links.append(here)
        ip("link", "set", there, "netns", ns)
        ip("addr", "add", f"{SUBNET}.{i}.1/30", "dev", here)
        ip("link", "set", here, "up")
        ip("addr", "add", f"{SUBNET}.{i}.2/30", "dev", there, netns=ns)
        ip("link", "set", there, "up", netns=ns)
        ip("link", "set", "lo", "up", netns=ns)
        if i:
            ip("route", "add", f"{SERVER}/32", "via", f"{SUBNET}.{i}.1", netns=ns)

    def binds(self) -> list[str]:
        """Where the test Redis listens: 127.0.0.1 for the test itself, and each host's link."""
        return ["127.0.0.1", *(f"{SUBNET}.{i}.1" for i in range(len(self.names)))]

    def prefix(self, i: int) -> list[str]:
        """The argv prefix that runs a command on host ``i``."""
        return ["ip", "netns", "exec", self.names[i]]

    def down(self, i: int) -> None:
        ip("link", "set", f"dm{self.tag}b{i}", "down", netns=self.names[i])

    def up(self, i: int) -> None:
        ip("link", "set", f"dm{self.tag}b{i}", "up", netns=self.names[i])
        if i:
            with contextlib.suppress(OSError):  # the route goes with the link; put it back
                ip("route", "add", f"{SERVER}/32", "via", f"{SUBNET}.{i}.1", netns=self.names[i])

    def pids(self, i: int) -> list[int]:
        return [int(p) for p in ip("netns", "pids", self.names[i]).split()]

    def kill(self, i: int) -> int:
        """SIGKILL every process on host ``i``, as a power cut would; returns how many."""
        pids = self.pids(i)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def close(self) -> None:
        for i, ns in enumerate(self.names):
            with contextlib.suppress(OSError):
                self.kill(i)
            with contextlib.suppress(OSError):
                ip("netns", "delete", ns)  # the veth pair goes with its namespace end
        for link in self.links:
            with contextlib.suppress(OSError):
                ip("link", "delete", link)


@contextmanager
def hosts(count: int) -> Iterator[Hosts]:
    """``count`` hosts, removed on exit whatever happens; skips in one line where they cannot be made."""
    import pytest

    made = Hosts()
    try:
        for i in range(count):
            made.add(i)
    except (OSError, FileNotFoundError, subprocess.SubprocessError) as exc:
        made.close()
        pytest.skip(f"network namespaces cannot be made here: {exc}")
    try:
        yield made
    finally:
        made.close()


def leftovers(tag: str) -> Sequence[str]:
    """Namespaces or links of ``tag`` still present (a test checks teardown left none)."""
    listed = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    spaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line for line in (listed + spaces).splitlines() if f"dm{tag}" in line]
