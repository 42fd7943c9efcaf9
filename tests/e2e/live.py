"""End-to-end helpers: `backtester serve` / `backtester worker` processes and a tiny
graphql-transport-ws client built on the `websockets` package."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import websockets

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = "graphql-transport-ws"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env() -> dict[str, str]:
    """This environment minus the variables that pick a deployment."""
    return {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}


class Process:
    """`python -m app <command>` (the `backtester` CLI) with its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        env = {**base_env(), **self.env}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app", *self.args],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM (a graceful shutdown), then SIGKILL if it hangs; the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


class Server(Process):
    """`backtester serve` on a free port; `start()` returns once /health says ok."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        super().__init__(["serve", "--host", "127.0.0.1", "--port", str(self.port)], env, log_path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def start(self, timeout: float = 90) -> Server:
        super().start()
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not healthy after {timeout}s:\n{self.log()}")


async def gql(client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None) -> Any:
    """POST an operation to /graphql; returns `data`, failing on any error."""
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


class TransportWS:
    """One graphql-transport-ws connection: `subscribe` yields each `next` payload."""

    _ids = itertools.count(1)

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    @classmethod
    async def connect(
        cls, url: str, *, payload: dict[str, Any] | None = None, **kwargs: Any
    ) -> TransportWS:
        """Connect and initialise; `payload` is the connection_init payload (e.g. the
        `{"Authorization": "Bearer <token>"}` of a team deployment)."""
        ws = await websockets.connect(url, subprotocols=[PROTOCOL], **kwargs)  # type: ignore[list-item]
        assert ws.subprotocol == PROTOCOL
        await ws.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        return cls(ws)

    async def subscribe(
        self, query: str, variables: dict[str, Any] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Payloads of `next` messages until `complete`; an `error` message raises."""
        op = str(next(self._ids))
        await self.ws.send(json.dumps(
            {"id": op, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}}
        ))
        done = False
        try:
            while True:
                msg = json.loads(await self.ws.recv())
                if msg.get("type") == "ping":
                    await self.ws.send(json.dumps({"type": "pong"}))
                    continue
                if msg.get("id") != op:
                    continue
                if msg["type"] in ("complete", "error"):
                    done = True
                if msg["type"] == "complete":
                    return
                if msg["type"] == "error":
                    raise AssertionError(f"subscription error: {msg['payload']}")
                yield msg["payload"]
        finally:
            if not done and self.ws.state.name == "OPEN":  # we stopped early: tell the server
                await self.ws.send(json.dumps({"id": op, "type": "complete"}))

    async def close(self) -> None:
        await self.ws.close()
