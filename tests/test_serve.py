"""Several explorer processes behind one port (``latent-verse explore --processes N``): each user is kept
on one process by a cookie, users are spread over the processes, and stopping the launcher stops them all."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from explorer_app.serve import StickyProxy

ROOT = Path(__file__).resolve().parent.parent


def free_ports(n: int) -> int:
    """A port with the ``n - 1`` after it free too."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + n > 65535:
            continue
        try:
            for p in range(port, port + n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
    raise RuntimeError("no free ports")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def get(url: str, cookie: str | None = None):
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    return urllib.request.urlopen(request, timeout=10)


def test_a_cookie_names_one_of_the_servers():
    proxy = StickyProxy([9001, 9002])
    assert proxy.pinned(b"GET / HTTP/1.1\r\nCookie: a=b; lv_server=1\r\n\r\n") == 1
    assert proxy.pinned(b"GET / HTTP/1.1\r\ncookie: lv_server=0\r\n\r\n") == 0
    for head in (b"GET / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nCookie: lv_server=2\r\n\r\n",
                 b"GET / HTTP/1.1\r\nCookie: lv_server=-1; lv_server=x\r\n\r\n"):
        assert proxy.pinned(head) is None


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the launcher's child processes from /proc")
def test_two_processes_behind_one_port_keep_each_user_and_stop_together():
    port = free_ports(3)
    launcher = subprocess.Popen([sys.executable, "-m", "explorer_app.serve", "--processes", "2", "--server.port",
                                 str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert "2 explorer processes" in launcher.stdout.readline()  # printed once both answer
        servers = children(launcher.pid)
        assert len(servers) == 2
        cookies = []
        for _ in range(2):  # two new users, one on each process
            with get(f"http://127.0.0.1:{port}/") as response:
                assert response.status == 200 and b"<html" in response.read().lower()
                cookies.append(response.headers["Set-Cookie"].split(";")[0])
        assert sorted(cookies) == [f"{StickyProxy.COOKIE}=0", f"{StickyProxy.COOKIE}=1"]
        with get(f"http://127.0.0.1:{port}/_stcore/health", cookies[0]) as response:
            assert response.read() == b"ok"
            assert StickyProxy.COOKIE not in response.headers.get("Set-Cookie", "")  # already pinned
        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=60) == 0  # the servers get 10 s to stop before they are killed
        assert not any(Path(f"/proc/{pid}").exists() for pid in servers)  # stopped and reaped by the launcher
    finally:
        if launcher.poll() is None:
            launcher.kill()


def test_a_bad_number_of_processes_is_refused():
    done = subprocess.run([sys.executable, "-m", "explorer_app.serve", "--processes", "0"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "--processes: must be a positive integer" in done.stderr
