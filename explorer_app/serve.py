"""The explorer from several processes on one machine: N ``streamlit run`` servers on local ports,
behind a small proxy on the public port that keeps each user on one of them.

    latent-verse explore --processes 2                      # on port 8501, or --server.port P
    python -m explorer_app.serve --processes 2 --server.port 8502

One process runs its sessions' Python on one core at a time, so a second process is what puts a
second core to work. Streamlit keeps a session in the process it first reached (its state, its map
files), so the proxy pins each user by a cookie: a request without it goes to the next server in
turn, and that server's first response sets it. The servers share the read-only checkpoints folder.
With one process (the default) there is no proxy: this process is the ``streamlit run`` server.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"
DEFAULT_PORT = 8501
START_SECONDS = 90  # how long a server may take to answer its health check


class StickyProxy:
    """An HTTP and websocket proxy that sends each user to one of ``ports`` on this machine, by cookie."""

    COOKIE = "lv_server"

    def __init__(self, ports: list[int]):
        self.ports, self.turn = ports, 0

    def pinned(self, head: bytes) -> int | None:
        """The server a request's cookie names, if it names one of ours."""
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"cookie:"):
                for part in line[7:].decode("latin-1").split(";"):
                    name, _, value = part.strip().partition("=")
                    if name == self.COOKIE and value.isdigit() and int(value) < len(self.ports):
                        return int(value)
        return None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        pinned = self.pinned(head)
        server = pinned
        if server is None:
            server, self.turn = self.turn, (self.turn + 1) % len(self.ports)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.ports[server])
            up_writer.write(head)
            if pinned is None:  # pin this user with the first response's head
                await up_writer.drain()
                status = await up_reader.readuntil(b"\r\n")
                writer.write(status + f"Set-Cookie: {self.COOKIE}={server}; Path=/; SameSite=Lax\r\n".encode())
        except (OSError, asyncio.IncompleteReadError):
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            writer.close()
            return
        await asyncio.gather(self.pipe(reader, up_writer), self.pipe(up_reader, writer))

    @staticmethod
    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def start_servers(ports: list[int], options: list[str] = (), quiet: bool = False) -> list[subprocess.Popen]:
    """One explorer server on each of ``ports`` (local connections only), with ``options`` passed on to
    ``streamlit run`` (their log goes to this process's stderr unless ``quiet``); returns once every
    one answers its health check."""
    servers = [subprocess.Popen([sys.executable, "-m", "explorer_app.serve", *options,
                                 "--server.headless", "true", "--server.address", "127.0.0.1",
                                 "--server.port", str(port)],
                                stdout=subprocess.DEVNULL,  # each one's banner names its own, private port
                                stderr=subprocess.DEVNULL if quiet else None) for port in ports]
    try:
        for port, server in zip(ports, servers):
            deadline = time.monotonic() + START_SECONDS
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"the explorer server for port {port} stopped (exit code {server.returncode})")
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"the explorer server on port {port} did not start") from None
                    time.sleep(0.3)
    except BaseException:
        stop(servers)
        raise
    return servers


def stop(servers: list[subprocess.Popen], grace: float = 10) -> None:
    """Ask every server to stop, and kill those still running after ``grace`` seconds."""
    for server in servers:
        server.terminate()
    deadline = time.monotonic() + grace
    for server in servers:
        try:
            server.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def _serve(servers: list[subprocess.Popen], ports: list[int], address: str, port: int) -> None:
    proxy = await asyncio.start_server(StickyProxy(ports).handle, address, port)
    print(f"Latent Verse: {len(ports)} explorer processes at http://{address or 'localhost'}:{port} "
          "(Ctrl+C stops them)", flush=True)
    async with proxy:
        while all(server.poll() is None for server in servers):
            await asyncio.sleep(1)
    died = next(i for i, server in enumerate(servers) if server.poll() is not None)
    raise RuntimeError(f"explorer process {died + 1} of {len(servers)} stopped (exit code "
                       f"{servers[died].returncode}); the others were stopped too")


def positive_int(text: str) -> int:
    """An argparse type (this launcher does not import the model package, and so not torch)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """``--processes``, the public ``--server.port`` and ``--server.address``; the rest go to streamlit."""
    parser = argparse.ArgumentParser(prog="latent-verse explore", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=positive_int, default=1,
                        help="explorer processes behind one port, say one a core (default 1: one process, "
                             "no proxy)")
    parser.add_argument("--server.port", dest="port", type=positive_int, default=None,
                        help=f"the public port (default {DEFAULT_PORT}); with several processes, they take the "
                             "ports after it")
    parser.add_argument("--server.address", dest="address", default=None,
                        help="the address to listen on (default: every interface)")
    parser.epilog = "Any other option goes on to `streamlit run` (see `streamlit run --help`)."
    return parser.parse_known_args(argv)


def streamlit_options(args: argparse.Namespace, options: list[str]) -> list[str]:
    """The options for a single ``streamlit run``: the passed-on ones, and the port and address if given."""
    given = [("--server.port", args.port), ("--server.address", args.address)]
    return [*options, *(part for name, value in given if value is not None for part in (name, str(value)))]


def run_streamlit(options: list[str]) -> int:
    """One explorer server in this process: ``streamlit run`` with ``options``. Meanwhile a thread imports
    the app's libraries (torch and the model package: about 1.3 s of a cold open), while streamlit starts
    and the first browser loads the page, so the app's first run finds them imported."""
    threading.Thread(target=_import_app_libraries, daemon=True).start()
    from streamlit.web import cli

    return cli.main(["run", str(APP), *options], prog_name="streamlit")


def _import_app_libraries() -> None:
    try:
        importlib.import_module("explorer_app.cache")
    except Exception:  # the app's own import fails the same way, and says so in the page
        pass


def main(argv=None) -> int:
    args, options = parse(sys.argv[1:] if argv is None else list(argv))
    if args.processes == 1:
        return run_streamlit(streamlit_options(args, options))
    port = args.port or DEFAULT_PORT
    if port + args.processes > 65535:
        print(f"error: --server.port {port} leaves no room for {args.processes} processes' ports after it",
              file=sys.stderr)
        return 2
    ports = [port + 1 + i for i in range(args.processes)]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a service manager's stop: the servers go too
    try:
        servers = start_servers(ports, options)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    try:
        asyncio.run(_serve(servers, ports, args.address or "", port))
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        stop(servers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
