"""``make bench``: how close kvmigrate gets to a vault's throttle limit, side by side with the usual ways.

The emulator runs as a separate process (``python -m kvmigrate emulator --config ... --env-file ...``) with 20 ms
latency and Key Vault's 4,000 transactions per 10 s per vault; every tool runs as its own child process and is
measured from outside (wall time, peak RSS and CPU of that child via ``os.wait4``; requests, 429s and the
emulator's CPU from the emulator). Objects are seeded with the limits off; before each measured run the benchmark
settings are restored, the vaults' throttle windows are left to drain and the counters are reset.

T* (the ideal time) = transactions the busiest vault charged ÷ its limit per second, where a charged transaction is
what the emulator counts against the limit: every request except 401 challenges and 429 answers.

``python -m benchmarks.run`` (``make bench``); ``BENCH_QUICK=1`` for a small run. See benchmarks/README.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.config import DEFAULT_CASES, BenchConfig
from benchmarks.emulator import BENCH_SETTINGS, SEED_SETTINGS, EmulatorProcess, clean_environment
from benchmarks.measure import Child, ChildResult, busy_cpu_seconds, own_cpu_seconds, run_child
from benchmarks.profile import Recorder, py_spy, summarise
from benchmarks.seed import seed_mixed, seed_secrets, touch_secrets

REPO = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
STRATEGIES = ("sequential-backup", "sequential-value", "unbounded-gather")
TOOL_OF = {
    "sequential-backup": "(a) sequential backup/restore loop",
    "sequential-value": "(b) sequential value copy",
    "unbounded-gather": "(c) unbounded asyncio.gather",
    "kvmigrate": "kvmigrate copy",
}

#: Source vaults and, per source, one fresh target per measured run.
SOURCES = {"small": "src-small", "large": "src-large", "mixed": "src-mixed", "plan": "src-plan"}
#: What-if targets on the small vault: one per variant, up to this many.
MAX_WHATIF = 8
TARGETS = {
    "small": ("kvmigrate", *STRATEGIES, "adaptive", "trust", "profile", *(f"wi{i}" for i in range(MAX_WHATIF))),
    "large": ("kvmigrate", *STRATEGIES, "sync", *(f"wi{i}" for i in range(MAX_WHATIF))),
    "mixed": ("kvmigrate", *STRATEGIES),
    "plan": ("plan",),
}
#: Operations the emulator charges to the create budget (create_rate_limit) instead of the general one.
CREATE_OPERATIONS = ("secrets.set", "keys.import", "certificates.import")
SHORT = {
    "kvmigrate": "kvm",
    "sequential-backup": "seq",
    "sequential-value": "val",
    "unbounded-gather": "gat",
    "adaptive": "ada",
    "trust": "tru",
    "profile": "prof",
    "plan": "plan",
    "sync": "sync",
}


def target_vault(size: str, use: str) -> str:
    return f"dst-{size}-{SHORT.get(use, use)}"


@dataclass
class Run:
    """One measured child process and what the emulator saw during it."""

    id: str
    case: str
    tool: str
    vault: str
    objects: int
    command: str
    returncode: int
    wall_seconds: float
    engine_seconds: float | None
    peak_rss_mb: float
    cpu_seconds: float
    moved: int | None
    failed: int | None
    throttled_client: int | None
    vault_stats: dict[str, dict[str, Any]]
    busiest_vault: str
    busiest_charged: int
    t_star_seconds: float
    ratio: float
    engine_ratio: float | None
    throttled_server: int
    requests_server: int
    throttled_share: float
    emulator_cpu_seconds: float
    objects_measured: int = 0  # objects the child actually handled (a sample, for extrapolated runs)
    other_load_cores: float = 0.0  # cores other processes of the machine kept busy during the run (contention)
    started: str = ""  # wall-clock start (UTC), to match a run against commits made meanwhile
    extrapolated: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu_ms_per_object(self) -> float | None:
        measured = self.objects_measured or self.objects
        return 1000 * self.cpu_seconds / measured if measured else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cpu_ms_per_object": self.cpu_ms_per_object}


class Bench:
    """Everything one benchmark run needs: config, the emulator child, a scratch directory, the results so far."""

    def __init__(self, config: BenchConfig, emulator: EmulatorProcess, workdir: Path) -> None:
        self.config = config
        self.emu = emulator
        self.workdir = workdir
        self.runs: list[Run] = []
        self.extra: dict[str, Any] = {}
        self.sizes = {
            "small": config.n_small,
            "large": config.n_large,
            "mixed": config.mixed.objects,
            "plan": config.plan_n,
        }

    # -- environment of the children -----------------------------------------------------------------------------------
    def child_env(self, trust: str | None = None) -> dict[str, str]:
        """The emulator's variables, with the CA trusted the way ``trust`` says.

        ``system``: no KVMIGRATE_CA_BUNDLE; SSL_CERT_FILE makes OpenSSL's default store trust the emulator's CA, so
        kvmigrate and the SDK use ``connection_verify=True`` exactly as they do against a real vault.
        ``ca-bundle``: KVMIGRATE_CA_BUNDLE (kvmigrate's --ca-bundle) and BENCH_CONNECTION_VERIFY=<CA> for the
        alternatives (``connection_verify=<CA file>``).
        """
        env = self.emu.child_environment()
        ca = env.pop("KVMIGRATE_CA_BUNDLE")
        if (trust or self.config.trust) == "system":
            env["SSL_CERT_FILE"] = ca
        else:
            env["KVMIGRATE_CA_BUNDLE"] = ca
            env["BENCH_CONNECTION_VERIFY"] = ca
        return env

    # -- seeding -------------------------------------------------------------------------------------------------------
    def seed(self, size: str) -> None:
        """Fill one source vault with the limits and latency off (not measured, but its time is reported)."""
        vault = SOURCES[size]
        self.emu.configure([vault], SEED_SETTINGS)
        started, cpu = time.monotonic(), self.emu.cpu_seconds()
        url = self.emu.urls[vault]
        if size == "mixed":
            asyncio.run(seed_mixed(url, self.emu.environment, self.config.mixed))
        else:
            names = [f"s-{i:06d}" for i in range(self.sizes[size])]
            asyncio.run(seed_secrets(url, names, self.emu.environment))
        self.emu.configure([vault], BENCH_SETTINGS)
        took = time.monotonic() - started
        self.extra.setdefault("seeding", {})[size] = {
            "objects": self.sizes[size],
            "seconds": round(took, 2),
            "emulator_cpu_seconds": round(self.emu.cpu_seconds() - cpu, 2),
        }
        log(f"seeded {vault}: {self.sizes[size]} objects in {took:.1f} s")

    # -- one measured run ----------------------------------------------------------------------------------------------
    def measure(
        self,
        *,
        run_id: str,
        case: str,
        tool: str,
        size: str,
        use: str,
        command: list[str],
        settings: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        profile_dir: Path | None = None,
    ) -> tuple[Run, ChildResult]:
        """Run ``command`` against SOURCES[size] → its ``use`` target and collect every measurement."""
        source, target = SOURCES[size], target_vault(size, use)
        vaults = [source, target]
        self.emu.prepare_measured_run(vaults, settings)
        limits = {}
        for vault in vaults:
            current = self.emu.control(vault, "settings")
            limits[vault] = (int(current["rate_limit"]), int(current["create_rate_limit"]))
        log(f"[{run_id}] {' '.join(command[2:5])} ... ({size}, {self.sizes[size]} objects)")
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        cpu_before = self.emu.cpu_seconds()
        machine_before, driver_before = busy_cpu_seconds(), own_cpu_seconds()
        recorders: list[Recorder] = []
        spy = py_spy() if profile_dir is not None else None
        if profile_dir is not None and spy is not None:
            recorders.append(Recorder(spy, self.emu.pid, profile_dir / "emulator.raw"))
        child = Child(command, env=env or self.child_env(), workdir=self.workdir / "runs", label=run_id, cwd=REPO)
        if profile_dir is not None and spy is not None:
            time.sleep(0.3)  # let the interpreter come up so py-spy can attach
            recorders.append(Recorder(spy, child.command_pid(), profile_dir / "client.raw"))
        try:
            result = child.wait(self.config.timeout)
        finally:
            for recorder in reversed(recorders):
                recorder.stop()
        emulator_cpu = self.emu.cpu_seconds() - cpu_before
        ours = result.cpu_seconds + emulator_cpu + own_cpu_seconds() - driver_before
        other_cores = max(0.0, busy_cpu_seconds() - machine_before - ours) / result.wall_seconds
        stats: dict[str, dict[str, Any]] = {}
        for role, vault in (("source", source), ("target", target)):
            stats[role] = vault_usage(self.emu.stats(vault), *limits[vault])
            stats[role]["vault"] = vault
        busiest = max(stats, key=lambda role: stats[role]["t_star_seconds"])
        t_star = stats[busiest]["t_star_seconds"]
        throttled = sum(s["throttled"] for s in stats.values())
        requests = sum(s["requests"] for s in stats.values())
        run = Run(
            id=run_id,
            case=case,
            tool=tool,
            vault=size,
            objects=self.sizes[size],
            command=" ".join(command),
            returncode=result.returncode,
            wall_seconds=result.wall_seconds,
            engine_seconds=None,
            peak_rss_mb=result.peak_rss_mb,
            cpu_seconds=result.cpu_seconds,
            moved=None,
            failed=None,
            throttled_client=None,
            vault_stats=stats,
            busiest_vault=busiest,
            busiest_charged=stats[busiest]["charged"],
            t_star_seconds=t_star,
            ratio=result.wall_seconds / t_star if t_star else float("nan"),
            engine_ratio=None,
            throttled_server=throttled,
            requests_server=requests,
            throttled_share=throttled / requests if requests else 0.0,
            emulator_cpu_seconds=emulator_cpu,
            other_load_cores=other_cores,
            started=started_at,
        )
        if result.returncode not in (0, 1):
            run.notes.append(f"exit code {result.returncode}: {result.stderr.strip()[-400:]}")
        return run, result

    def record(self, run: Run) -> None:
        self.runs.append(run)
        log(
            f"    wall {run.wall_seconds:.1f} s, T* {run.t_star_seconds:.1f} s, ratio {run.ratio:.2f}, "
            f"moved {run.moved}, failed {run.failed}, 429s {run.throttled_server}, "
            f"RSS {run.peak_rss_mb:.0f} MB, CPU {run.cpu_seconds:.1f} s, "
            f"emulator CPU {run.emulator_cpu_seconds:.1f} s, other processes {run.other_load_cores:.2f} cores"
        )

    # -- the tools -----------------------------------------------------------------------------------------------------
    def kvmigrate_copy(
        self,
        *,
        run_id: str,
        case: str,
        size: str,
        use: str,
        rps: float,
        settings: dict[str, Any] | None = None,
        trust: str | None = None,
        profile_dir: Path | None = None,
        tool: str = "kvmigrate",
        patches: str = "",
        command_name: str = "copy",
        journal: str | None = None,
    ) -> Run:
        """``kvmigrate copy`` (or ``sync``, sharing ``journal`` between runs); with ``patches``, through
        benchmarks/whatif.py (a what-if run, never the product)."""
        state = self.workdir / "state" / f"{journal or run_id}.db"
        state.parent.mkdir(parents=True, exist_ok=True)
        entry = ["-m", "benchmarks.whatif"] if patches else ["-m", "kvmigrate"]
        env = self.child_env(trust)
        if patches:
            env["BENCH_PATCHES"] = patches.replace("+", ",")
        command = [
            PYTHON,
            *entry,
            command_name,
            self.emu.urls[SOURCES[size]],
            self.emu.urls[target_vault(size, use)],
            "-o",
            "json",
            "--state",
            str(state),
            "--rps",
            f"{rps:g}",
        ]
        run, result = self.measure(
            run_id=run_id,
            case=case,
            tool=tool,
            size=size,
            use=use,
            command=command,
            settings=settings,
            env=env,
            profile_dir=profile_dir,
        )
        if patches:
            run.notes.append(f"what-if: kvmigrate with benchmarks/whatif.py patches {patches}")
        try:
            summary = json.loads(result.stdout)
        except ValueError:
            run.notes.append(f"no JSON summary; stderr: {result.stderr.strip()[-400:]}")
            summary = {}
        run.summary = {
            k: summary.get(k)
            for k in (
                "copied",
                "already_copied",
                "skipped",
                "failed",
                "requests",
                "requests_by_vault",
                "throttled",
                "throttled_by_vault",
                "elapsed_seconds",
            )
        }
        run.summary["failures"] = (summary.get("failures") or [])[:5]
        run.moved, run.failed = summary.get("copied"), summary.get("failed")
        run.throttled_client = summary.get("throttled")
        run.engine_seconds = summary.get("elapsed_seconds")
        if run.engine_seconds and run.t_star_seconds:
            run.engine_ratio = run.engine_seconds / run.t_star_seconds
        self.record(run)
        return run

    def alternative(self, *, strategy: str, size: str, sample: int | None) -> Run:
        command = [
            PYTHON,
            "-m",
            "benchmarks.alternatives",
            strategy,
            self.emu.urls[SOURCES[size]],
            self.emu.urls[target_vault(size, strategy)],
        ]
        if sample is not None:
            command += ["--sample", str(sample)]
        run, result = self.measure(
            run_id=f"{SHORT[strategy]}-{size}",
            case="alternatives",
            tool=strategy,
            size=size,
            use=strategy,
            command=command,
        )
        try:
            tally = json.loads(result.stdout)
        except ValueError:
            run.notes.append(f"no JSON result; stderr: {result.stderr.strip()[-400:]}")
            tally = {}
        run.summary = tally
        run.moved, run.failed = tally.get("moved"), tally.get("failed")
        run.engine_seconds = tally.get("elapsed_seconds")
        if run.engine_seconds and run.t_star_seconds:
            run.engine_ratio = run.engine_seconds / run.t_star_seconds
        if strategy == "sequential-value":
            run.notes.append("latest version of secrets only (keys, certificates and older versions stay behind)")
        listed = tally.get("listed") or 0
        if sample is not None and listed and listed < run.objects:
            factor = run.objects / listed
            timed = tally.get("list_seconds", 0.0) + tally.get("loop_seconds", 0.0)
            run.objects_measured = listed
            run.extrapolated = {
                "sample": listed,
                "factor": round(factor, 3),
                "measured_wall": run.wall_seconds,
                "measured_t_star": run.t_star_seconds,
            }
            run.wall_seconds = run.wall_seconds - timed + timed * factor
            run.t_star_seconds *= factor
            run.ratio = run.wall_seconds / run.t_star_seconds if run.t_star_seconds else float("nan")
            run.engine_seconds = None
            run.engine_ratio = None
            run.notes.append(f"ran on {listed} objects and extrapolated linearly ×{factor:.1f} (list and loop time)")
        self.record(run)
        return run

    def plan(self) -> Run:
        command = [
            PYTHON,
            "-m",
            "kvmigrate",
            "plan",
            self.emu.urls[SOURCES["plan"]],
            self.emu.urls[target_vault("plan", "plan")],
            "-o",
            "json",
            "--rps",
            f"{self.config.rps:g}",
        ]
        run, result = self.measure(
            run_id="plan-scale", case="scale", tool="kvmigrate plan", size="plan", use="plan", command=command
        )
        try:
            document = json.loads(result.stdout)
            summary = document.get("summary", {})
            run.moved = len(document.get("items", []))
            run.summary = {k: v for k, v in summary.items() if k != "warnings"}
        except ValueError:
            run.notes.append(f"no JSON plan; stderr: {result.stderr.strip()[-400:]}")
        run.failed = 0 if result.returncode == 0 else None
        self.record(run)
        return run

    # -- start-up ------------------------------------------------------------------------------------------------------
    def startup(self) -> None:
        """Process start-up, reported separately and never subtracted: `--version`, and the imports of a copy."""
        probes = {
            "version": [PYTHON, "-m", "kvmigrate", "--version"],
            "imports": [PYTHON, "-c", "import kvmigrate.cli, kvmigrate.engine, kvmigrate.plan"],
        }
        result: dict[str, Any] = {}
        for name, command in probes.items():
            samples = [
                run_child(
                    command,
                    env=self.child_env(),
                    workdir=self.workdir / "runs",
                    label=f"startup-{name}-{i}",
                    timeout=120,
                    cwd=REPO,
                )
                for i in range(5)
            ]
            result[name] = {
                "command": " ".join(command[1:]),
                "wall_seconds": statistics.median(s.wall_seconds for s in samples),
                "cpu_seconds": statistics.median(s.cpu_seconds for s in samples),
                "peak_rss_mb": statistics.median(s.peak_rss_mb for s in samples),
            }
        self.extra["startup"] = result
        log(
            f"start-up: --version {result['version']['wall_seconds']:.2f} s, imports of a copy "
            f"{result['imports']['wall_seconds']:.2f} s"
        )


def vault_usage(raw: dict[str, Any], rate_limit: int, create_rate_limit: int) -> dict[str, Any]:
    """What one vault charged during a run and the ideal time for it.

    The emulator does not charge 401 challenges or 429 answers; creates (secret set, key and certificate import)
    draw on their own budget. T* of the vault = max(general charged ÷ rate_limit/10 s, creates ÷ create limit/10 s).
    """
    charged = raw["requests"] - raw["throttled"] - raw["unauthorized"]
    creates = sum(raw["operations"].get(op, 0) for op in CREATE_OPERATIONS)
    general = max(0, charged - creates)
    t_general = general / (rate_limit / 10) if rate_limit else 0.0
    t_creates = creates / (create_rate_limit / 10) if create_rate_limit else 0.0
    return {
        "requests": raw["requests"],
        "throttled": raw["throttled"],
        "unauthorized": raw["unauthorized"],
        "charged": charged,
        "creates": creates,
        "rate_limit": rate_limit,
        "create_rate_limit": create_rate_limit,
        "t_star_seconds": max(t_general, t_creates),
        "operations": raw["operations"],
    }


def log(message: str) -> None:
    print(f"{datetime.now().strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = "unknown"
    memory_kb = 0
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            memory_kb = int(line.split()[1])
    versions = {}
    for package in (
        "kvmigrate",
        "azure-core",
        "azure-identity",
        "azure-keyvault-secrets",
        "azure-keyvault-keys",
        "azure-keyvault-certificates",
        "aiohttp",
        "py-spy",
    ):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:  # noqa: BLE001 - a missing package is reported as such
            versions[package] = "not installed"
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": round(memory_kb / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "commit": product_state(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
    }


def product_state() -> str:
    """The last commit that touched kvmigrate/, plus a digest of uncommitted changes there.

    Others may commit or edit during a run; commits elsewhere (benchmarks/, tests/) do not change what is measured.
    """

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()

    commit = git("log", "-1", "--format=%h", "--", "kvmigrate") or "unknown"
    diff = git("diff", "HEAD", "--", "kvmigrate")
    if diff:
        import hashlib

        commit += f"+dirty:{hashlib.sha256(diff.encode()).hexdigest()[:8]}"
    return commit


def run_cases(bench: Bench) -> None:
    config = bench.config
    cases = set(config.cases)
    need = {"small"} if cases & {"copy", "alternatives", "adaptive", "cabundle", "whatif", "profile"} else set()
    if cases & {"copy", "alternatives"}:
        need |= {"large", "mixed"}
    if "whatif" in cases:
        need.add(config.whatif_vault)
    for size in ("small", "large", "mixed"):
        if size in need:
            bench.seed(size)
    bench.startup()
    if "copy" in cases:  # 1. throughput
        for size in ("small", "mixed", "large"):
            bench.kvmigrate_copy(run_id=f"kvm-{size}", case="copy", size=size, use="kvmigrate", rps=config.rps)
    if "alternatives" in cases:  # 2. the usual ways, same vaults, same run
        for strategy, in_full in ALTERNATIVES_IN_FULL.items():
            for size in ("small", "mixed", "large"):
                bench.alternative(strategy=strategy, size=size, sample=None if size in in_full else config.sample)
    if "adaptive" in cases:  # 3. the server allows less than --rps
        limit = {"rate_limit": config.adaptive_rate_limit}
        bench.kvmigrate_copy(
            run_id="adaptive-small",
            case="adaptive",
            size="small",
            use="adaptive",
            rps=config.adaptive_rps,
            settings=limit,
        )
    if "cabundle" in cases:  # the other way to trust the emulator's CA, same vault
        other = "ca-bundle" if config.trust == "system" else "system"
        run = bench.kvmigrate_copy(
            run_id=f"trust-{other}-small",
            case="trust",
            size="small",
            use="trust",
            rps=config.rps,
            trust=other,
            tool=f"kvmigrate copy ({other})",
        )
        run.notes.append(
            "CA trusted with --ca-bundle (KVMIGRATE_CA_BUNDLE)"
            if other == "ca-bundle"
            else "CA trusted through SSL_CERT_FILE (the default store)"
        )
    if "whatif" in cases:  # what the fixes the profile suggests would buy (patched in-process, never shipped)
        for i, variant in enumerate(config.whatif[:MAX_WHATIF]):
            bench.kvmigrate_copy(
                run_id=f"whatif-{variant}",
                case="whatif",
                size=config.whatif_vault,
                use=f"wi{i}",
                rps=config.rps,
                patches=variant,
                tool=f"kvmigrate copy + {variant}",
            )
    if "profile" in cases:  # 5. where the time goes
        profile_dir = Path(os.environ.get("BENCH_PROFILE_DIR") or bench.workdir / "profile")
        profile_dir.mkdir(parents=True, exist_ok=True)
        if py_spy() is None:
            bench.extra["profile"] = {"error": "py-spy is not installed (make bench installs it into .venv)"}
        else:
            run = bench.kvmigrate_copy(
                run_id="profile-small",
                case="profile",
                size="small",
                use="profile",
                rps=config.rps,
                profile_dir=profile_dir,
                tool="kvmigrate copy (py-spy)",
            )
            run.notes.append("sampled by py-spy at 100 Hz (client and emulator); attached 0.3 s after start")
            bench.extra["profile"] = {
                "run": run.id,
                "client": summarise(profile_dir / "client.raw").as_dict(),
                "emulator": summarise(profile_dir / "emulator.raw").as_dict(),
                "emulator_cpu_seconds": round(run.emulator_cpu_seconds, 2),
                "client_cpu_seconds": round(run.cpu_seconds, 2),
                "wall_seconds": round(run.wall_seconds, 2),
            }
    if "sync" in cases:  # 6. a standby: the first sync, one with nothing to do, one after 1% of the source changed
        if "large" not in need:
            bench.seed("large")
        common = {"case": "sync", "size": "large", "use": "sync", "rps": config.rps, "command_name": "sync"}
        bench.kvmigrate_copy(run_id="sync-first", tool="kvmigrate sync (first)", journal="sync-large", **common)
        bench.kvmigrate_copy(run_id="sync-nochange", tool="kvmigrate sync (no change)", journal="sync-large", **common)
        changed = [f"s-{i:06d}" for i in range(0, bench.sizes["large"], 100)]  # 1%
        asyncio.run(touch_secrets(bench.emu.urls[SOURCES["large"]], changed, bench.emu.environment))
        run = bench.kvmigrate_copy(
            run_id="sync-1pct", tool="kvmigrate sync (1% changed)", journal="sync-large", **common
        )
        run.notes.append(f"{len(changed)} secrets' tags changed in the source before this run")
    if "scale" in cases:  # 4. plan of plan_n objects (seeded last: the emulator is lighter for the other cases)
        bench.seed("plan")
        bench.plan()
    bench.extra["emulator_memory_mb"] = bench.emu.memory_mb()


#: Vaults each alternative runs through in full; on the others it runs on a sample and is extrapolated. Sequential
#: loops are latency-bound and linear, so a sample measures them well; the loop the speed-up target names (sequential
#: backup at 2,000) and the mixed vault (whose listing order would bias a sample) run in full, as does the gather,
#: whose throttling is the point. This keeps `make bench` well inside 15 minutes.
ALTERNATIVES_IN_FULL = {
    "unbounded-gather": ("small", "mixed", "large"),
    "sequential-backup": ("small", "mixed"),
    "sequential-value": ("mixed",),
}


def main() -> None:
    config = BenchConfig.from_environment()
    complete = not config.quick and set(DEFAULT_CASES) <= set(config.cases)
    output = Path(os.environ.get("BENCH_OUTPUT") or HERE / "results" / ("latest.json" if complete else "quick.json"))
    info = machine()
    log(
        f"kvmigrate benchmark: {'quick' if config.quick else 'full'} run, cases {','.join(config.cases)}; "
        f"{info['nproc']} cores ({info['cpu_model']}), results → {output}"
    )
    environment = clean_environment()  # computed before the clear, or it would be empty (no PATH, no BENCH_*)
    os.environ.clear()
    os.environ.update(environment)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kvmigrate-bench-") as scratch:
        workdir = Path(scratch)
        vaults = [*SOURCES.values(), *(target_vault(size, use) for size, uses in TARGETS.items() for use in uses)]
        with EmulatorProcess(vaults, workdir / "emulator") as emulator:
            os.environ.update(emulator.environment)  # the seeding SDK clients use DefaultAzureCredential too
            bench = Bench(config, emulator, workdir)
            run_cases(bench)
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    info["commit_end"] = product_state()
    if info["commit_end"] != info["commit"]:
        log(
            f"WARNING: kvmigrate changed during the run ({info['commit']} -> {info['commit_end']}); "
            "the runs may have measured different code"
        )
    results = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "total_seconds": round(time.monotonic() - started, 1),
        "machine": info,
        "config": config.as_dict(),
        "settings": BENCH_SETTINGS,
        **bench.extra,
        "runs": [run.as_dict() for run in bench.runs],
    }
    results["speedups"] = report.speedups(results)
    results["targets"] = report.targets(results)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(report.text_table(results))
    if complete or os.environ.get("BENCH_README") == "1":
        report.update_readme(HERE / "README.md", results)
        log("benchmarks/README.md updated")
    log(f"done in {time.monotonic() - started:.0f} s; JSON: {output}")


if __name__ == "__main__":
    main()
