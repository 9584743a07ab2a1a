"""``make bench``: Switchyard's overhead against a direct call to a fast mock OpenAI upstream.

One run measures the direct path (load generator -> mock) and the path through Switchyard
(load generator -> gateway -> mock) for each topology asked for, and prints one table:

- p50 / p99 latency of non-streaming chat at concurrency 1 (wrk, 1 connection),
- requests per second at concurrency 32 (wrk, 32 connections),
- p50 time to first chunk of streaming chat at concurrency 8 (``ttfc.py``),
- the RSS of the gateway's whole process tree (sum over processes; the largest sample taken after
  each load phase).

Every Switchyard process runs on one core (``taskset`` on ``switchyard up``; children inherit it);
the mock, wrk, the TTFC client and this script run on another, so the gateway's figures are what
one core buys. On a machine with a single CPU nothing is pinned and the table says so.

This is not a test: it prints figures and the targets from DESIGN.md §5 next to them. It exits
non-zero only when it could not measure (a process failed to start, wrk is missing).
Everything it starts is stopped on the way out, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MASTER_KEY = "sk-bench-master"
UPSTREAM_KEY = "sk-bench"
MODEL = "bench-model"
CHAT_PATH = "/v1/chat/completions"


@dataclasses.dataclass(frozen=True)
class Targets:
    """DESIGN.md §5: what one core of Switchyard must achieve."""

    added_p50_ms: float = 1.0
    added_p99_ms: float = 3.0
    rps_c32: float = 1200.0
    added_ttfc_ms: float = 2.0
    rss_mb: float = 400.0


TARGETS = Targets()


@dataclasses.dataclass
class PathResult:
    """The figures of one path (direct or one topology); None where not measured."""

    name: str
    p50_ms: float | None = None
    p99_ms: float | None = None
    rps: float | None = None
    ttfc_p50_ms: float | None = None
    rss_mb: float | None = None
    errors: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Pinning:
    """Which CPUs the gateway and the load side use; empty prefixes when pinning is off."""

    gateway_cpu: int | None
    load_cpu: int | None

    @property
    def enabled(self) -> bool:
        return self.gateway_cpu is not None

    def gateway_prefix(self) -> list[str]:
        return ["taskset", "-c", str(self.gateway_cpu)] if self.enabled else []

    def load_prefix(self) -> list[str]:
        return ["taskset", "-c", str(self.load_cpu)] if self.enabled else []


# --- processes --------------------------------------------------------------------------------


class Managed:
    """A started process in its own process group, its output drained into a ring buffer.

    Draining matters: a child whose pipe fills up blocks. ``wait_for_line`` waits for a line
    containing a marker, e.g. the "listening on" line.
    """

    def __init__(
        self, name: str, argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.lines: deque[str] = deque(maxlen=300)
        self._new_line = threading.Condition()
        self.proc = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._drain, name=f"drain-{name}", daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._new_line:
                self.lines.append(line.rstrip("\n"))
                self._new_line.notify_all()
        with self._new_line:
            self._new_line.notify_all()

    def wait_for_line(self, marker: str, timeout: float) -> str:
        """The first output line containing ``marker``; raises if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        with self._new_line:
            while True:
                for line in self.lines:
                    if marker in line:
                        return line
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError(f"{self.name} exited with code {self.proc.returncode}\n{self.tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"{self.name} did not print {marker!r} within {timeout:.0f} s\n{self.tail()}")
                self._new_line.wait(min(left, 0.5))

    def tail(self, count: int = 40) -> str:
        return "\n".join(f"  {self.name}| {line}" for line in list(self.lines)[-count:])

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the leader (it stops its own children), then SIGKILL whatever is left of its tree."""
        survivors = process_tree(self.proc.pid)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                print(
                    f"note: {self.name} did not stop within {grace:.0f} s of SIGTERM; killing it",
                    file=sys.stderr,
                )
        # Its process group, then any descendant that moved to a session of its own.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid, started in survivors:
            if _start_time(pid) == started:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


def process_tree(root: int) -> list[tuple[int, int]]:
    """(pid, start time) of ``root`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[tuple[int, int]] = []
    pending = [root]
    while pending:
        pid = pending.pop()
        started = _start_time(pid)
        if started is None:
            continue
        found.append((pid, started))
        pending.extend(children.get(pid, ()))
    return found


def _start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); fields after the ")" of the command name start at field 3.
    return int(stat.rpartition(")")[2].split()[19])


def tree_rss_mb(root: int) -> tuple[float, float, int]:
    """(sum of RSS, sum of PSS, process count) of a process tree, in MB (10^6 bytes)."""
    rss_kb = pss_kb = 0
    pids = process_tree(root)
    for pid, _ in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss_kb += int(line.split()[1])
                    break
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss_kb += int(line.split()[1])
                    break
    return rss_kb * 1024 / 1e6, pss_kb * 1024 / 1e6, len(pids)


@contextlib.contextmanager
def started(
    name: str, argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[Managed]:
    """A :class:`Managed` process that is stopped when the block ends, however it ends."""
    process = Managed(name, argv, cwd=cwd, env=env)
    try:
        yield process
    finally:
        process.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- load generators --------------------------------------------------------------------------


def run_wrk(
    pinning: Pinning, url: str, api_key: str, *, connections: int, threads: int, duration: float
) -> dict[str, float]:
    """Run wrk with ``chat.lua``; its parsed WRK_RESULT line plus ``rps``."""
    argv = [
        *pinning.load_prefix(),
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(HERE / "chat.lua"),
        url,
    ]
    env = {**os.environ, "BENCH_API_KEY": api_key, "BENCH_MODEL": MODEL}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration + 60, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("WRK_RESULT "):
            result: dict[str, float] = json.loads(line.removeprefix("WRK_RESULT "))
            result["rps"] = result["requests"] / (result["duration_us"] / 1e6) if result["duration_us"] else 0.0
            return result
    raise RuntimeError(f"wrk printed no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


def run_ttfc(pinning: Pinning, url: str, api_key: str, *, concurrency: int, duration: float) -> dict[str, float]:
    argv = [
        *pinning.load_prefix(),
        sys.executable,
        str(HERE / "ttfc.py"),
        url,
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration),
        "--api-key",
        api_key,
        "--model",
        MODEL,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 90, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("TTFC_RESULT "):
            return dict(json.loads(line.removeprefix("TTFC_RESULT ")))
    raise RuntimeError(f"ttfc.py printed no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


def wrk_errors(result: dict[str, float]) -> int:
    return int(sum(value for key, value in result.items() if key.startswith("errors_")))


def measure(
    name: str, base_url: str, api_key: str, pinning: Pinning, duration: float, rss_root: int | None
) -> PathResult:
    """Warm up, then c=1 latency, c=32 throughput, c=8 time to first chunk; RSS after each phase."""
    url = base_url + CHAT_PATH
    result = PathResult(name)
    rss_samples: list[float] = []

    def sample_rss() -> None:
        if rss_root is not None:
            rss_samples.append(tree_rss_mb(rss_root)[0])

    print(f"[{name}] warming up", flush=True)
    run_wrk(pinning, url, api_key, connections=8, threads=1, duration=max(2.0, duration / 5))
    run_ttfc(pinning, url, api_key, concurrency=2, duration=1.0)

    print(f"[{name}] latency at concurrency 1 ({duration:.0f} s)", flush=True)
    c1 = run_wrk(pinning, url, api_key, connections=1, threads=1, duration=duration)
    result.p50_ms, result.p99_ms = c1["p50_us"] / 1000, c1["p99_us"] / 1000
    if wrk_errors(c1):
        result.errors.append(f"c=1: {wrk_errors(c1)} failed requests of {c1['requests']:.0f}")
    sample_rss()

    print(f"[{name}] throughput at concurrency 32 ({duration:.0f} s)", flush=True)
    c32 = run_wrk(pinning, url, api_key, connections=32, threads=2, duration=duration)
    result.rps = c32["rps"]
    if wrk_errors(c32):
        result.errors.append(f"c=32: {wrk_errors(c32)} failed requests of {c32['requests']:.0f}")
    sample_rss()

    print(f"[{name}] time to first chunk at concurrency 8 ({duration:.0f} s)", flush=True)
    ttfc = run_ttfc(pinning, url, api_key, concurrency=8, duration=duration)
    result.ttfc_p50_ms = ttfc["p50_us"] / 1000 if ttfc["samples"] else None
    if ttfc["errors"]:
        result.errors.append(f"streams: {ttfc['errors']:.0f} failed of {ttfc['samples'] + ttfc['errors']:.0f}")
    sample_rss()

    if rss_samples:
        result.rss_mb = max(rss_samples)
    return result


# --- gateway ----------------------------------------------------------------------------------


def gateway_config(mock_port: int) -> str:
    return (
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: http://127.0.0.1:{mock_port}/v1\n"
        f"      api_key: {UPSTREAM_KEY}\n"
        "general_settings:\n"
        f"  master_key: {MASTER_KEY}\n"
    )


def switchyard_command(explicit: str | None) -> list[str]:
    """How to run the ``switchyard`` CLI: the given command, the venv's script, or ``uv run``."""
    if explicit:
        return explicit.split()
    script = Path(sys.executable).with_name("switchyard")
    if script.exists():
        return [str(script)]
    return ["uv", "run", "--project", str(ROOT), "switchyard"]


def wait_ready(base_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base_url + "/health/readiness", timeout=2) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise RuntimeError(f"/health/readiness not ready within {timeout:.0f} s ({last})")


def check_answers(base_url: str, api_key: str) -> None:
    """One plain and one streaming request must succeed before any figure means anything."""
    for stream in (False, True):
        body = json.dumps(
            {"model": MODEL, "messages": [{"role": "user", "content": "Say hello"}], "stream": stream}
        ).encode()
        request = urllib.request.Request(
            base_url + CHAT_PATH,
            data=body,
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise RuntimeError(f"{'streaming ' if stream else ''}chat failed: HTTP {exc.code}: {detail}") from None
        if '"choices"' not in text or (stream and "data:" not in text):
            raise RuntimeError(f"{'streaming ' if stream else ''}chat answered unexpectedly: {text[:500]}")


def measure_gateway(
    topology: str, mock_port: int, pinning: Pinning, duration: float, command: list[str], workdir: Path
) -> PathResult:
    config = workdir / f"config-{topology}.yaml"
    config.write_text(gateway_config(mock_port))
    port = free_port()
    run_dir = workdir / topology
    run_dir.mkdir(exist_ok=True)
    argv = [
        *pinning.gateway_prefix(),
        *command,
        "up",
        "--config",
        str(config),
        "--port",
        str(port),
        "--topology",
        topology,
        "--data-dir",
        str(run_dir),
    ]
    # Unbuffered so the "listening on" line arrives at once; the state directory is the temp dir.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    name = f"switchyard {topology}"
    print(f"[{name}] starting: {' '.join(argv)}", flush=True)
    with started(name, argv, cwd=run_dir, env=env) as gateway:
        try:
            line = gateway.wait_for_line("listening on http://", timeout=90)
            base_url = "http://" + line.split("listening on http://", 1)[1].split()[0].rstrip("/")
            wait_ready(base_url, timeout=60)
            check_answers(base_url, MASTER_KEY)
            result = measure(name, base_url, MASTER_KEY, pinning, duration, rss_root=gateway.proc.pid)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"[{name}] FAILED: {exc}\n{gateway.tail()}", file=sys.stderr, flush=True)
            return PathResult(name, errors=[f"not measured: {str(exc).splitlines()[0]}"])
        _, pss, count = tree_rss_mb(gateway.proc.pid)
        print(f"[{name}] {count} processes, PSS now {pss:.0f} MB", flush=True)
        return result


# --- report -----------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _judged(value: float | None, limit: float, *, at_most: bool, digits: int = 3) -> str:
    if value is None:
        return "-"
    ok = value <= limit if at_most else value >= limit
    return f"{value:.{digits}f} {'ok' if ok else 'MISS'}"


def render(direct: PathResult, gateways: list[PathResult], pinning: Pinning, duration: float) -> str:
    header = [
        "path",
        "p50 c=1 ms",
        "p99 c=1 ms",
        "added p50 ms",
        "added p99 ms",
        "rps c=32",
        "TTFC p50 c=8 ms",
        "added TTFC ms",
        "RSS MB",
    ]
    rows = [
        [
            direct.name,
            _fmt(direct.p50_ms),
            _fmt(direct.p99_ms),
            "-",
            "-",
            _fmt(direct.rps, 0),
            _fmt(direct.ttfc_p50_ms),
            "-",
            "-",
        ]
    ]
    for result in gateways:

        def added(value: float | None, base: float | None) -> float | None:
            return None if value is None or base is None else value - base

        rows.append(
            [
                result.name,
                _fmt(result.p50_ms),
                _fmt(result.p99_ms),
                _judged(added(result.p50_ms, direct.p50_ms), TARGETS.added_p50_ms, at_most=True),
                _judged(added(result.p99_ms, direct.p99_ms), TARGETS.added_p99_ms, at_most=True),
                _judged(result.rps, TARGETS.rps_c32, at_most=False, digits=0),
                _fmt(result.ttfc_p50_ms),
                _judged(added(result.ttfc_p50_ms, direct.ttfc_p50_ms), TARGETS.added_ttfc_ms, at_most=True),
                _judged(result.rss_mb, TARGETS.rss_mb, at_most=True, digits=0),
            ]
        )
    rows.append(
        [
            "target",
            "",
            "",
            f"<= {TARGETS.added_p50_ms:g}",
            f"<= {TARGETS.added_p99_ms:g}",
            f">= {TARGETS.rps_c32:g}",
            "",
            f"<= {TARGETS.added_ttfc_ms:g}",
            f"< {TARGETS.rss_mb:g}",
        ]
    )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    out = [line(header), "|" + "|".join("-" * (width + 2) for width in widths) + "|"]
    out += [line(row) for row in rows]
    if pinning.enabled:
        out.append(
            f"Switchyard pinned to CPU {pinning.gateway_cpu}; mock, wrk and the TTFC client to CPU "
            f"{pinning.load_cpu}. {duration:.0f} s per measurement."
        )
    else:
        out.append("Only one CPU available: nothing pinned; figures are not comparable with the targets.")
    out.append("RSS: sum over the gateway's process tree, largest sample after each load phase.")
    for result in [direct, *gateways]:
        for error in result.errors:
            out.append(f"WARNING {result.name}: {error}")
    return "\n".join(out)


# --- main -------------------------------------------------------------------------------------


def choose_pinning() -> Pinning:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return Pinning(None, None)
    return Pinning(gateway_cpu=cpus[0], load_cpu=cpus[1])


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found; installing it with apt-get", flush=True)
        install = ["apt-get", "install", "-y", "-q", "wrk"]
        if subprocess.run(install, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False)
            subprocess.run(install, capture_output=True, check=False)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is required: install it (Debian/Ubuntu: apt-get install wrk) and run again")


def _raise_on_sigterm(signum: int, frame: object) -> None:
    # Turn SIGTERM into an exception so every `finally` stops what it started.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Switchyard overhead benchmark (see DESIGN.md §5).")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    parser.add_argument("--topology", choices=["split", "single", "both"], default="both")
    parser.add_argument(
        "--switchyard",
        metavar="COMMAND",
        help="command that runs the switchyard CLI (default: the venv's switchyard script)",
    )
    parser.add_argument(
        "--direct-only", action="store_true", help="measure only the mock upstream (checks the harness)"
    )
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    ensure_wrk()
    pinning = choose_pinning()
    if pinning.load_cpu is not None:
        # This script only waits; keep it off the gateway's core.
        os.sched_setaffinity(0, {pinning.load_cpu})
    else:
        print("note: fewer than 2 CPUs (or no taskset): running without pinning", flush=True)

    topologies = [] if args.direct_only else ["split", "single"] if args.topology == "both" else [args.topology]
    with tempfile.TemporaryDirectory(prefix="switchyard-bench-") as tmp:
        mock_argv = [*pinning.load_prefix(), sys.executable, str(HERE / "mock_upstream.py"), "--port", "0"]
        with started("mock", mock_argv) as mock:
            try:
                line = mock.wait_for_line("listening on http://", timeout=30)
            except RuntimeError as exc:
                print(f"mock upstream did not start: {exc}", file=sys.stderr)
                return 1
            mock_url = "http://" + line.split("listening on http://", 1)[1].strip()
            mock_port = int(mock_url.rsplit(":", 1)[1])
            direct = measure("direct", mock_url, UPSTREAM_KEY, pinning, args.duration, rss_root=None)
            command = switchyard_command(args.switchyard)
            gateways = [
                measure_gateway(topology, mock_port, pinning, args.duration, command, Path(tmp))
                for topology in topologies
            ]
    print()
    print(render(direct, gateways, pinning, args.duration))
    return 1 if any(result.p50_ms is None for result in gateways) else 0


if __name__ == "__main__":
    sys.exit(main())
