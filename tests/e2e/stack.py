"""Starts the whole gateway the way `make run` does: `switchyard up --config FILE --port N`.

The stack runs as real processes (one per service in the split topology, one in the single
topology); tests talk to it over HTTP like any user would.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SWITCHYARD = str(Path(sys.executable).parent / "switchyard")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    """A running gateway and the log lines it printed."""

    process: subprocess.Popen[str]
    base_url: str
    master_key: str
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def logs(self) -> str:
        return "\n".join(self.lines)

    def router_target(self) -> str:
        """``host:port`` of the router's gRPC server, from the readiness lines the processes print."""
        for line in self.lines:
            # split: "router     | switchyard ready grpc=N"; single: "switchyard ready grpc=N http=M"
            service, found, rest = line.rpartition("switchyard ready ")
            if found and service.strip(" |") in ("router", ""):
                fields = dict(item.split("=", 1) for item in rest.split())
                return f"127.0.0.1:{fields['grpc']}"
        raise LookupError("the router's readiness line was not printed")

    def stop(self, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.reader is not None:
            self.reader.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def start_stack(config_path: Path, data_dir: Path, topology: str, master_key: str, timeout: float = 90) -> Stack:
    port = free_port()
    process = subprocess.Popen(
        [
            SWITCHYARD,
            "up",
            "--config",
            str(config_path),
            "--port",
            str(port),
            "--topology",
            topology,
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    stack = Stack(process, f"http://127.0.0.1:{port}", master_key)
    ready: queue.Queue[bool] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            stack.lines.append(line.rstrip("\n"))
            if "Switchyard edge listening on" in line:
                ready.put(True)
        ready.put(False)

    stack.reader = threading.Thread(target=pump, daemon=True)
    stack.reader.start()
    deadline = time.monotonic() + timeout
    try:
        ok = ready.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
        ok = False
    if not ok:
        stack.stop()
        raise RuntimeError(f"gateway did not start ({topology}):\n{stack.logs()}")
    return stack
