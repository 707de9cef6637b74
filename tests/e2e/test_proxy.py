"""HTTPS_PROXY and NO_PROXY reach the vault clients, as in any corporate network (the shared session honours them)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kvmigrate.emulator import Emulator
from kvmigrate.vault.clients import VaultClients
from tests.e2e.test_copy import cli_env, run_cli
from tests.seed import seed_secrets


class ConnectProxy:
    """A forward proxy that only tunnels CONNECT, recording each target and Proxy-Authorization it was sent."""

    def __init__(self) -> None:
        self.tunnels: list[tuple[str, str | None]] = []
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        method, target, _ = head[0].split(" ", 2)
        headers = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        self.tunnels.append((target, headers.get("Proxy-Authorization")))
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ConnectProxy]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://user:s3cret@127.0.0.1:{server.sockets[0].getsockname()[1]}"
        async with server:
            yield self


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


@pytest.mark.parametrize("bypass", [False, True])
async def test_vault_traffic_follows_https_proxy_and_no_proxy(
    emulator: Emulator, src: VaultClients, tmp_path: Path, bypass: bool
) -> None:
    await seed_secrets(src, 3, prefix="px")
    async with ConnectProxy().running() as proxy:
        env = {**cli_env(emulator), "HTTPS_PROXY": proxy.url}
        if bypass:
            env["NO_PROXY"] = "127.0.0.1"
        source, target = emulator.vaults["src"].url, emulator.vaults["dst"].url
        result = await asyncio.to_thread(run_cli, emulator, "plan", source, target, "-o", "json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert {item["name"] for item in json.loads(result.stdout)["items"]} >= {"px-0000", "px-0001", "px-0002"}
    if bypass:
        assert proxy.tunnels == []
        return
    assert {target for target, _ in proxy.tunnels} == {urlsplit(source).netloc, urlsplit(target).netloc}
    expected = "Basic " + base64.b64encode(b"user:s3cret").decode()
    assert {auth for _, auth in proxy.tunnels} == {expected}  # credentials from the URL, not the vault's token
