"""A private ``redis-server`` for tests and benchmarks of the Redis transport."""

from __future__ import annotations

__all__ = ["RedisServer", "RedisServerError"]

import collections
import shutil
import socket
import subprocess
import threading
from types import TracebackType

# The line redis-server (6.2 and later) logs once it accepts connections.
_READY_TEXT = "Ready to accept connections"


class RedisServerError(RuntimeError):
    """``redis-server`` is missing, or did not start."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """Run ``redis-server`` on 127.0.0.1 without persistence.

    Each `start` after a `stop` or `kill` runs a new server on the same
    port with no data, as a real server restarted without persistence:
    what the transport's reconnection must survive.

    Parameters
    ----------
    port : `int`, optional
        TCP port; a free one is chosen if not given.
    executable : `str`, optional
        Name or path of the server program.

    Raises
    ------
    RedisServerError
        If ``executable`` is not found.
    """

    def __init__(self, port: int | None = None, *, executable: str = "redis-server") -> None:
        path = shutil.which(executable)
        if path is None:
            raise RedisServerError(
                f"{executable} not found; install it (Debian: apt-get install redis-server)"
            )
        self.executable = path
        self.port = port if port is not None else _free_port()
        self._process: subprocess.Popen[str] | None = None
        self._drain_thread: threading.Thread | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=50)

    @staticmethod
    def available(executable: str = "redis-server") -> bool:
        """Is the server program installed?"""
        return shutil.which(executable) is not None

    @property
    def url(self) -> str:
        """URL for ``CALIBSCRIPTS_REDIS_URL``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Is the server process alive?"""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and return once it accepts connections.

        Raises
        ------
        RedisServerError
            If it exits or is not ready within ``timeout`` seconds; the
            message holds its last output lines.
        """
        if self.running:
            raise RedisServerError(f"redis-server on port {self.port} is already running")
        self._output.clear()
        process = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self._process = process
        ready = threading.Event()
        # Read the log in a thread: it tells when the server is ready, and
        # keeps the pipe drained for the server's whole life.
        self._drain_thread = threading.Thread(target=self._drain, args=(process, ready), daemon=True)
        self._drain_thread.start()
        if not ready.wait(timeout) or not self.running:
            self.kill()
            output = "\n".join(self._output)
            raise RedisServerError(f"redis-server on port {self.port} did not start:\n{output}")

    def _drain(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._output.append(line.rstrip())
            if _READY_TEXT in line:
                ready.set()
        ready.set()  # exited: let start() see it at once

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down (SIGTERM) and wait for it to exit."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._reap()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        self._reap()

    def _reap(self) -> None:
        if self._process is None:
            return
        self._process.wait()
        if self._drain_thread is not None:
            self._drain_thread.join()  # reads to the end of the log, which the exit closed
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._process = None
        self._drain_thread = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, type: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
