"""Run ``kvmigrate emulator`` as a separate process and drive its loopback-only control endpoints.

The benchmark client and the emulated vaults must not share an event loop or a core budget more than the machine
forces, so the emulator is started with ``python -m kvmigrate emulator --config <toml> --env-file <file>``; its env
file gives the vault URLs, the CA file and the managed-identity variables. Every URL is checked to be 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: What Key Vault allows and what the benchmark runs under (the issue: 20 ms, 4,000 per 10 s, no Retry-After).
BENCH_SETTINGS: dict[str, Any] = {
    "rate_limit": 4000,
    "create_rate_limit": 300,
    "latency_ms": 20.0,
    "retry_after": False,
}
#: While seeding: no throttling, no latency.
SEED_SETTINGS: dict[str, Any] = {"rate_limit": 0, "create_rate_limit": 0, "latency_ms": 0.0}
#: The emulator's throttle is a sliding 10-second window: a vault is "cold" again this long after its last request.
LOOPBACK = "127.0.0.1"
#: Ambient settings that must not reach a benchmark child (real Azure credentials, proxies, CA overrides).
SCRUB = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "KVMIGRATE_CA_BUNDLE",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "https_proxy",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
)


class EmulatorError(RuntimeError):
    """The emulator process did not start, answered a control call with an error, or died."""


def require_loopback(url: str) -> str:
    """Return ``url`` unchanged if it points at 127.0.0.1; the benchmark never sends traffic anywhere else."""
    host = urlsplit(url).hostname
    if host != LOOPBACK:
        raise EmulatorError(f"refusing to send benchmark traffic to {url!r}: only {LOOPBACK} is allowed")
    return url


def toml_text(defaults: dict[str, Any], vaults: dict[str, dict[str, Any]]) -> str:
    """Render the emulator config (flat tables of ints, floats, bools and strings) as TOML."""

    def value(item: Any) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, int | float):
            return repr(item)
        return json.dumps(str(item))

    lines = ["[defaults]", *(f"{k} = {value(v)}" for k, v in defaults.items()), ""]
    for name, table in vaults.items():
        lines += [f"[vaults.{name}]", *(f"{k} = {value(v)}" for k, v in table.items()), ""]
    return "\n".join(lines)


@dataclass
class EmulatorProcess:
    """One ``kvmigrate emulator`` child serving every benchmark vault; ``with EmulatorProcess(...) as emu``."""

    vaults: list[str]
    workdir: Path
    python: str = sys.executable
    start_timeout: float = 90.0
    urls: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    _process: subprocess.Popen[bytes] | None = None
    _log: Any = None
    _ssl: ssl.SSLContext | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------------
    def __enter__(self) -> EmulatorProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Write the TOML, start the child, and wait (bounded) for its env file."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "emulator.toml"
        env_file = self.workdir / "emulator.env"
        env_file.unlink(missing_ok=True)
        # host pinned to 127.0.0.1, port 0 (a free one), the benchmark settings from the start.
        defaults = {"host": LOOPBACK, "port": 0, "consistency_delay": 0.2, **BENCH_SETTINGS}
        config.write_text(toml_text(defaults, {name: {} for name in self.vaults}), encoding="utf-8")
        self._log = open(self.workdir / "emulator.log", "wb")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [
                self.python,
                "-m",
                "kvmigrate",
                "emulator",
                "--config",
                str(config),
                "--env-file",
                str(env_file),
                "--state-dir",
                str(self.workdir / "state"),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=clean_environment(),
            start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        while not env_file.exists():
            if self._process.poll() is not None:
                raise EmulatorError(
                    f"the emulator exited with {self._process.returncode}; see {self.workdir / 'emulator.log'}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise EmulatorError(f"the emulator did not write {env_file} within {self.start_timeout:.0f} s")
            time.sleep(0.1)
        for line in env_file.read_text(encoding="utf-8").splitlines():
            key, _, val = line.partition("=")
            if key:
                self.environment[key] = val
        for name in self.vaults:
            self.urls[name] = require_loopback(self.environment[f"KVMIGRATE_VAULT_{name.upper().replace('-', '_')}"])
        require_loopback(self.environment["IDENTITY_ENDPOINT"])
        self._ssl = ssl.create_default_context(cafile=self.ca_file)

    def stop(self) -> None:
        """SIGTERM the child (it stops cleanly), SIGKILL after 10 s."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def pid(self) -> int:
        if self._process is None or self._process.poll() is not None:
            raise EmulatorError("the emulator is not running")
        return self._process.pid

    @property
    def ca_file(self) -> str:
        return self.environment["KVMIGRATE_CA_BUNDLE"]

    def child_environment(self) -> dict[str, str]:
        """What a benchmark child needs: a scrubbed environment plus the emulator's variables."""
        return {**clean_environment(), **self.environment}

    # -- control endpoints ---------------------------------------------------------------------------------------------
    def control(self, vault: str, path: str, *, method: str = "GET", body: Any = None) -> Any:
        """Call ``/_emulator/<path>`` on one vault over verified TLS (the CA file) and return the JSON answer."""
        parts = urlsplit(require_loopback(self.urls[vault]))
        assert parts.hostname is not None and parts.port is not None
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=self._ssl, timeout=30)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            connection.request(method, f"/_emulator/{path}", body=payload, headers=headers)
            response = connection.getresponse()
            answer = json.loads(response.read() or b"null")
        finally:
            connection.close()
        if response.status != 200:
            raise EmulatorError(f"{method} /_emulator/{path} on {vault}: {response.status} {answer}")
        return answer

    def configure(self, vaults: list[str], settings: dict[str, Any]) -> None:
        """``PATCH /_emulator/settings`` on each vault."""
        for vault in vaults:
            self.control(vault, "settings", method="PATCH", body=settings)

    def stats(self, vault: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.control(vault, "stats")
        return answer

    def reset_stats(self, vaults: list[str]) -> None:
        for vault in vaults:
            self.control(vault, "stats/reset", method="POST")

    def prepare_measured_run(self, vaults: list[str], settings: dict[str, Any] | None = None) -> None:
        """Benchmark settings on, counters zeroed, and every vault's throttle window emptied of earlier traffic.

        A run started right after another on the same vault would otherwise inherit a partly used 10-second window;
        emptying it is what waiting 10 s would do, without the wait.
        """
        self.configure(vaults, {**BENCH_SETTINGS, **(settings or {})})
        for vault in vaults:
            self.control(vault, "throttle/reset", method="POST")
        self.reset_stats(vaults)

    # -- the process as a whole ----------------------------------------------------------------------------------------
    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the emulator process so far (from /proc/<pid>/stat)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        return ticks / os.sysconf("SC_CLK_TCK")

    def memory_mb(self) -> dict[str, float]:
        """Current and peak resident set of the emulator (VmRSS, VmHWM) in MB."""
        result: dict[str, float] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                result[key] = int(rest.split()[0]) / 1024
        return result


def clean_environment() -> dict[str, str]:
    """os.environ without ambient Azure credentials, proxies or CA overrides; tracing off."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    env["AZURE_CORE_DISABLE_TRACING"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env
