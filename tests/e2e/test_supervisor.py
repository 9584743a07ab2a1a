"""`switchyard up`: one process per service, prefixed logs, clean stop, clear config errors."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import MASTER_KEY, UPSTREAM_KEY, gateway_config
from tests.e2e.stack import SWITCHYARD, start_stack, write_config
from tests.fakes.openai_upstream import FakeOpenAI

SERVICES = ("edge", "router", "auth", "providers", "management")


def _service_pids(data_dir: Path) -> dict[str, int]:
    """The `switchyard serve <service>` processes started for ``data_dir``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv]
        if "serve" in words and str(data_dir) in words:
            found[words[words.index("serve") + 1]] = int(entry.name)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


async def test_split_runs_each_service_in_its_own_process_and_stops_them_all(
    upstream: FakeOpenAI, tmp_path: Path
) -> None:
    os.environ["E2E_UPSTREAM_KEY"] = UPSTREAM_KEY
    config = write_config(tmp_path / "config.yaml", gateway_config(upstream))
    data_dir = tmp_path / "data"
    stack = await asyncio.to_thread(start_stack, config, data_dir, "split", MASTER_KEY)
    try:
        pids = _service_pids(data_dir)
        assert set(pids) == set(SERVICES)
        assert len(set(pids.values())) == len(SERVICES)
        for service in SERVICES:
            assert any(line.startswith(f"{service:<10} | ") for line in stack.lines), service
    finally:
        code = await asyncio.to_thread(stack.stop)
    assert code == 0
    for _ in range(100):  # up to 5 s
        if not any(_alive(pid) for pid in pids.values()):
            break
        await asyncio.sleep(0.05)
    assert [name for name, pid in pids.items() if _alive(pid)] == []


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        ("model_list: [\n", "not valid YAML"),
        (
            "model_list:\n  - model_name: m\n    litellm_params: {model: openai/m, rpm: lots}\n"
            "general_settings: {master_key: sk-x}\n",
            "model_list[0].litellm_params.rpm: must be a number",
        ),
        ("model_list: []\n", "general_settings.master_key: is required"),
    ],
    ids=["yaml", "wrong-type", "no-master-key"],
)
def test_invalid_config_stops_the_start_with_file_key_and_reason(
    tmp_path: Path, config_text: str, message: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(config_text)
    result = subprocess.run(
        [SWITCHYARD, "up", "--config", str(config), "--port", "0"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert f"{config}: " in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr
