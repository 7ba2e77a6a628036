"""Helpers for the operations tests: real processes (the bot's command, nginx) on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx

# The end-to-end harness (the app polling the sandbox, the demo school), shared.
from tests.e2e.conftest import running_bot, school, session_factory, settings  # noqa: F401

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx",) if Path(path).exists()), None
    )


def nginx_config(directory: Path, *, port: int, upstreams: list[int]) -> Path:
    """A config that runs as whoever starts it: every path under `directory`."""
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / name).mkdir(parents=True, exist_ok=True)
    servers = "\n".join(
        f"        server 127.0.0.1:{upstream} max_fails=1 fail_timeout=60s;"
        for upstream in upstreams
    )
    # As root, nginx would hand its workers to "nobody", who cannot use the temp directories.
    user = "user root;" if os.geteuid() == 0 else ""
    config = directory / "nginx.conf"
    config.write_text(
        f"""
{user}
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {directory}/access.log;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    upstream bot {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location /telegram/webhook {{
            proxy_pass http://bot;
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""
    )
    return config


async def start_nginx(directory: Path, *, port: int, upstreams: list[int]) -> Any:
    binary = nginx_binary()
    assert binary is not None
    config = nginx_config(directory, port=port, upstreams=upstreams)
    process = await asyncio.create_subprocess_exec(
        binary,
        "-p",
        str(directory),
        "-e",
        str(directory / "error.log"),
        "-c",
        str(config),
        "-g",
        "daemon off;",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await wait_for_port(port, process=process, what="nginx", log=directory / "error.log")
    return process


async def wait_for_port(port: int, *, process: Any, what: str, log: Path, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise AssertionError(f"{what} stopped: {tail(log)}")
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise AssertionError(f"{what} did not listen on {port}: {tail(log)}")


async def wait_ready(port: int, *, process: Any, log: Path, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise AssertionError(f"the bot stopped: {tail(log)}")
            try:
                response = await http.get(f"http://127.0.0.1:{port}/readyz")
                if response.status_code == 200:
                    return dict(response.json())
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"not ready on {port}: {tail(log)}")


async def start_bot_process(env: dict[str, str], *, cwd: Path, log: Path) -> Any:
    """`portfolio-bot run --webhook` as an operator starts it (python -m: the same entry)."""
    handle = log.open("wb")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "run",
            "--webhook",
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env},
            cwd=cwd,
            stdout=handle,
            stderr=asyncio.subprocess.STDOUT,
        )
    finally:
        handle.close()


async def stop(process: Any, *, signal_number: int, seconds: float = 15) -> None:
    if process.returncode is None:
        process.send_signal(signal_number)
        try:
            await asyncio.wait_for(process.wait(), seconds)
        except TimeoutError:
            process.kill()
            await process.wait()


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


def json_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines
