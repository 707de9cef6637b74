"""Benchmark sizes and knobs, from environment variables (``BENCH_QUICK=1`` for a run of a few minutes)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.seed import MixedShape

ALL_CASES = ("copy", "alternatives", "adaptive", "cabundle", "whatif", "profile", "sync", "scale")
#: A full run (the one that updates README.md): every case but the what-ifs, which test suggested fixes on demand.
DEFAULT_CASES = tuple(case for case in ALL_CASES if case != "whatif")
#: What-if variants of the copy (benchmarks/whatif.py patches; "+" joins patches within one variant; "none" is
#: the product unpatched, run back to back with the others so they compare under the same machine load).
DEFAULT_WHATIF = ("none", "journal-off")


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class BenchConfig:
    """Every knob of a benchmark run; each has an environment variable (see benchmarks/README.md)."""

    quick: bool
    n_small: int  # BENCH_N_SMALL: single-version secrets of the "small" vault (2,000)
    n_large: int  # BENCH_N_LARGE: single-version secrets of the "large" vault (20,000)
    plan_n: int  # BENCH_PLAN_N: objects planned in the scale case (100,000)
    sample: int  # BENCH_SAMPLE: objects a sampled sequential alternative runs on, then extrapolated (250)
    rps: float  # BENCH_RPS: kvmigrate --rps in the throughput cases (400 = 4,000 per 10 s)
    adaptive_rate_limit: int  # BENCH_ADAPTIVE_RATE_LIMIT: the server's limit per 10 s in the adaptive case (1,000)
    adaptive_rps: float  # BENCH_ADAPTIVE_RPS: kvmigrate --rps in the adaptive case (400)
    trust: str  # BENCH_TRUST: "system" (CA via SSL_CERT_FILE, as a real vault) or "ca-bundle" (--ca-bundle FILE)
    cases: tuple[str, ...]  # BENCH_CASES: comma-separated subset of ALL_CASES (DEFAULT_CASES)
    whatif: tuple[str, ...]  # BENCH_WHATIF: comma-separated variants, patches joined by "+" (DEFAULT_WHATIF)
    whatif_vault: str  # BENCH_WHATIF_VAULT: small or large (large: where the client is CPU-bound)
    mixed: MixedShape = field(default_factory=MixedShape)
    timeout: float = 1800.0  # BENCH_TIMEOUT: seconds any one measured child may run before it is killed

    @classmethod
    def from_environment(cls) -> BenchConfig:
        quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
        n_small = _int("BENCH_N_SMALL", 500 if quick else 2000)
        cases = tuple(c.strip() for c in os.environ.get("BENCH_CASES", ",".join(DEFAULT_CASES)).split(",") if c.strip())
        unknown = set(cases) - set(ALL_CASES)
        if unknown:
            raise SystemExit(f"BENCH_CASES: unknown case(s) {sorted(unknown)}; choose from {', '.join(ALL_CASES)}")
        if os.environ.get("BENCH_WHATIF_VAULT", "large") not in ("small", "large"):
            raise SystemExit("BENCH_WHATIF_VAULT must be small or large")
        trust = os.environ.get("BENCH_TRUST", "system")
        if trust not in ("system", "ca-bundle"):
            raise SystemExit("BENCH_TRUST must be system or ca-bundle")
        whatif = tuple(
            v.strip() for v in os.environ.get("BENCH_WHATIF", ",".join(DEFAULT_WHATIF)).split(",") if v.strip()
        )
        mixed = MixedShape(single=100, multi=10, rsa_keys=4, ec_keys=4, certificates=2) if quick else MixedShape()
        return cls(
            quick=quick,
            n_small=n_small,
            n_large=_int("BENCH_N_LARGE", 2000 if quick else 20000),
            plan_n=_int("BENCH_PLAN_N", 5000 if quick else 100_000),
            sample=_int("BENCH_SAMPLE", 100 if quick else 250),
            rps=_float("BENCH_RPS", 400.0),
            adaptive_rate_limit=_int("BENCH_ADAPTIVE_RATE_LIMIT", 1000),
            adaptive_rps=_float("BENCH_ADAPTIVE_RPS", 400.0),
            trust=trust,
            cases=cases,
            mixed=mixed,
            whatif=whatif,
            whatif_vault=os.environ.get("BENCH_WHATIF_VAULT", "large"),
            timeout=_float("BENCH_TIMEOUT", 1800.0),
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mixed": {**asdict(self.mixed), "objects": self.mixed.objects}}
