"""Turn a benchmark run's results into the printed table, the speed-ups, the targets and the README block."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

TOOLS = {
    "kvmigrate": "kvmigrate copy",
    "sequential-backup": "(a) sequential backup/restore",
    "sequential-value": "(b) sequential value copy",
    "unbounded-gather": "(c) unbounded gather",
}
BEGIN, END = "<!-- results:begin (written by benchmarks/run.py) -->", "<!-- results:end -->"
RSS_LIMIT_MB = 200


def _runs(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {run["id"]: run for run in results.get("runs", [])}


def _num(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def speedups(results: dict[str, Any]) -> list[dict[str, Any]]:
    """kvmigrate's wall time against each alternative on the same vault: alternative wall ÷ kvmigrate wall."""
    runs = _runs(results)
    rows = []
    short = {"sequential-backup": "seq", "sequential-value": "val", "unbounded-gather": "gat"}
    for size in ("small", "mixed", "large"):
        ours = runs.get(f"kvm-{size}")
        if ours is None:
            continue
        for strategy, prefix in short.items():
            other = runs.get(f"{prefix}-{size}")
            if other is None:
                continue
            rows.append(
                {
                    "vault": size,
                    "objects": ours["objects"],
                    "alternative": strategy,
                    "alternative_wall": round(other["wall_seconds"], 2),
                    "kvmigrate_wall": round(ours["wall_seconds"], 2),
                    "speedup": round(other["wall_seconds"] / ours["wall_seconds"], 2),
                    "alternative_moved": other["moved"],
                    "alternative_failed": other["failed"],
                    "alternative_429": other["throttled_server"],
                    "extrapolated": other["extrapolated"] is not None,
                }
            )
    return rows


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each met / not met / not measured, with the measured numbers."""
    runs = _runs(results)
    rows: list[dict[str, Any]] = []

    def add(target: str, measured: str, met: bool | None) -> None:
        rows.append({"target": target, "measured": measured, "met": met})

    for size in ("small", "large"):
        run = runs.get(f"kvm-{size}")
        label = f"copy of {run['objects']:,} secrets <= 1.10 x T*" if run else f"copy ({size}) <= 1.10 x T*"
        if run is None:
            add(label, "not run", None)
            continue
        ok = run["ratio"] <= 1.10 and not run["failed"]
        add(
            label,
            f"{run['ratio']:.2f} x T* (wall {run['wall_seconds']:.1f} s, T* {run['t_star_seconds']:.1f} s; "
            f"engine alone {_num(run['engine_ratio'], 2)} x; failed {run['failed']})",
            ok,
        )
    run = runs.get("adaptive-small")
    if run is None:
        add("adaptive: <= 1.3 x T* with <= 2% of requests throttled", "not run", None)
    else:
        ok = run["ratio"] <= 1.3 and run["throttled_share"] <= 0.02 and not run["failed"]
        add(
            "adaptive: <= 1.3 x T* with <= 2% of requests throttled",
            f"{run['ratio']:.2f} x T* (wall {run['wall_seconds']:.1f} s, T* {run['t_star_seconds']:.1f} s), "
            f"{100 * run['throttled_share']:.1f}% throttled ({run['throttled_server']:,} of "
            f"{run['requests_server']:,}); failed {run['failed']}",
            ok,
        )
    run = runs.get("plan-scale")
    label = f"plan of {run['objects']:,} objects: peak RSS <= {RSS_LIMIT_MB} MB" if run else "plan: peak RSS"
    add(
        label,
        "not run"
        if run is None
        else f"{run['peak_rss_mb']:.0f} MB (wall {run['wall_seconds']:.0f} s, T* {run['t_star_seconds']:.0f} s)",
        None if run is None else run["peak_rss_mb"] <= RSS_LIMIT_MB and run["returncode"] == 0,
    )
    run = runs.get("kvm-large")
    label = f"copy of {run['objects']:,}: peak RSS <= {RSS_LIMIT_MB} MB" if run else "copy (large): peak RSS"
    add(
        label,
        "not run" if run is None else f"{run['peak_rss_mb']:.0f} MB",
        None if run is None else run["peak_rss_mb"] <= RSS_LIMIT_MB,
    )
    run = runs.get("sync-nochange")
    if run is None:
        add("sync with nothing to do: <= ceil(N/25)*2 + 10 requests per vault", "not run", None)
    else:
        budget = math.ceil(run["objects"] / 25) * 2 + 10
        by_vault = (run.get("summary") or {}).get("requests_by_vault") or {}
        busiest = max(by_vault.values(), default=0)
        add(
            f"sync with nothing to do of {run['objects']:,} objects: <= {budget:,} requests per vault",
            f"{busiest:,} on the busier vault, {run['wall_seconds']:.1f} s (T* {run['t_star_seconds']:.1f} s)",
            busiest <= budget and run["returncode"] == 0,
        )
    run = runs.get("sync-1pct")
    if run is not None:
        add(
            f"sync after 1% of {run['objects']:,} objects changed converges",
            f"{run['wall_seconds']:.1f} s, {run['ratio']:.2f} x T* (T* {run['t_star_seconds']:.1f} s), "
            f"{run['requests_server']:,} requests",
            run["returncode"] == 0,
        )
    ours, loop = runs.get("kvm-small"), runs.get("seq-small")
    gather = max(
        (run for run in runs.values() if run["case"] == "alternatives" and run["tool"] == "unbounded-gather"),
        key=lambda run: run["failed"] or 0,
        default=None,
    )
    if ours is None or loop is None:
        add(">= 10x faster than the sequential loop (small vault), 0 failures", "not run", None)
    else:
        factor = loop["wall_seconds"] / ours["wall_seconds"]
        extra = ""
        if gather is not None:
            extra = (
                f"; the unbounded gather lost {gather['failed']:,} of {gather['objects']:,} objects with "
                f"{gather['throttled_server']:,} 429s ({gather['vault']} vault), kvmigrate "
                f"{runs.get('kvm-' + gather['vault'], {}).get('failed')} there"
            )
        add(
            f">= 10x faster than the sequential loop at {ours['objects']:,} objects, 0 failures",
            f"{factor:.1f}x ({loop['wall_seconds']:.0f} s vs {ours['wall_seconds']:.1f} s), kvmigrate failed "
            f"{ours['failed']}{extra}",
            factor >= 10 and ours["failed"] == 0,
        )
    return rows


def _row_cells(run: dict[str, Any]) -> list[str]:
    extrapolated = "*" if run["extrapolated"] else ""
    moved = f"{_num(run['moved'])}/{_num(run['failed'])}"
    client = run["throttled_client"]
    throttled = f"{_num(client)}/{run['throttled_server']:,}"
    return [
        run["id"],
        run["tool"],
        f"{run['vault']} ({run['objects']:,})",
        _num(run["wall_seconds"]) + extrapolated,
        _num(run["engine_seconds"]),
        _num(run["t_star_seconds"]),
        _num(run["ratio"], 2),
        _num(run["engine_ratio"], 2),
        moved,
        throttled,
        f"{100 * run['throttled_share']:.1f}%",
        _num(run["peak_rss_mb"], 0),
        _num(run["cpu_seconds"]),
        _num(run["cpu_ms_per_object"], 2),
        _num(run["emulator_cpu_seconds"]),
        _num(run.get("other_load_cores", 0.0), 2),
    ]


HEADERS = [
    "run",
    "tool",
    "vault (objects)",
    "wall s",
    "engine s",
    "T* s",
    "wall/T*",
    "engine/T*",
    "moved/failed",
    "429 client/server",
    "429 share",
    "peak RSS MB",
    "CPU s",
    "CPU ms/obj",
    "emulator CPU s",
    "other load (cores)",
]


def text_table(results: dict[str, Any]) -> str:
    rows = [HEADERS, *(_row_cells(run) for run in results.get("runs", []))]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    out = [
        "",
        *lines,
        "  (* = extrapolated from a sample; T* = charged requests on the busiest vault / its limit per second)",
        "",
    ]
    startup = results.get("startup")
    if startup:
        out.append(
            f"start-up: `kvmigrate --version` {startup['version']['wall_seconds']:.2f} s; imports of a copy "
            f"{startup['imports']['wall_seconds']:.2f} s (included in every wall time above)"
        )
    for row in results.get("speedups", []):
        star = " (extrapolated)" if row["extrapolated"] else ""
        out.append(
            f"speed-up vs {row['alternative']} on {row['vault']}: {row['speedup']:.1f}x{star} "
            f"(moved {row['alternative_moved']}, failed {row['alternative_failed']}, "
            f"429s {row['alternative_429']})"
        )
    out.append("")
    for row in results.get("targets", []):
        verdict = {True: "MET", False: "NOT MET", None: "not measured"}[row["met"]]
        out.append(f"[{verdict}] {row['target']}: {row['measured']}")
    return "\n".join(out)


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _profile_md(title: str, data: dict[str, Any], top: int = 10) -> list[str]:
    if not data or not data.get("samples"):
        return [f"{title}: no samples."]
    lines = [
        f"**{title}**: {data['busy_seconds']:.1f} s of busy samples ({data['idle_seconds']:.1f} s idle "
        f"left out); {100 * data['in_worker_threads']['share']:.0f}% of the busy ones in worker threads.",
        "",
    ]
    lines.append(
        _md_table(
            ["owner", "seconds", "share"],
            [[k, f"{v['seconds']:.2f}", f"{100 * v['share']:.1f}%"] for k, v in list(data["by_owner"].items())[:top]],
        )
    )
    lines += ["", "Hottest functions (self time):", ""]
    lines.append(
        _md_table(
            ["function", "share"],
            [[f"`{row['function']}`", f"{100 * row['share']:.1f}%"] for row in data["top_self"][:top]],
        )
    )
    if data.get("top_inclusive_kvmigrate"):
        lines += ["", "kvmigrate functions, inclusive time:", ""]
        lines.append(
            _md_table(
                ["function", "share"],
                [
                    [f"`{row['function']}`", f"{100 * row['share']:.1f}%"]
                    for row in data["top_inclusive_kvmigrate"][:top]
                ],
            )
        )
    return lines


def markdown(results: dict[str, Any]) -> str:
    """The generated part of benchmarks/README.md."""
    info, config = results["machine"], results["config"]
    out = [
        f"Last full run: {results['generated']} (kvmigrate/ at commit {info['commit']}), "
        f"{results['total_seconds'] / 60:.1f} minutes in all.",
        "",
    ]
    if info.get("commit_end", info["commit"]) != info["commit"]:
        out += [
            f"**Warning:** kvmigrate changed during this run ({info['commit']} → {info['commit_end']}); rows "
            "may have measured different code.",
            "",
        ]
    out.append(
        _md_table(
            ["machine", ""],
            [
                ["cores (nproc)", str(info["nproc"])],
                ["CPU", info["cpu_model"]],
                ["memory", f"{info['memory_gib']} GiB"],
                ["Python", info["python"]],
                ["platform", info["platform"]],
                ["load average at start / end", f"{info['load_average_start']} / {info.get('load_average_end')}"],
                ["packages", ", ".join(f"{k} {v}" for k, v in info["packages"].items())],
            ],
        )
    )
    settings = results["settings"]
    out += [
        "",
        f"Emulator: latency {settings['latency_ms']:g} ms, {settings['rate_limit']:,} transactions per 10 s "
        f"per vault, {settings['create_rate_limit']} creates per 10 s, no Retry-After. kvmigrate "
        f"`--rps {config['rps']:g}`, default concurrency (32). CA trust: `{config['trust']}`. "
        f"Mixed vault: {config['mixed']['objects']} objects ({config['mixed']['single']} plain secrets, "
        f"{config['mixed']['multi']} secrets x {config['mixed']['versions']} versions, 2 odd secrets, "
        f"{config['mixed']['rsa_keys']} RSA keys x 2 versions, {config['mixed']['ec_keys']} EC keys, "
        f"{config['mixed']['certificates']} certificates).",
        "",
    ]
    out.append(_md_table(HEADERS, [_row_cells(run) for run in results["runs"]]))
    out += [
        "",
        "`*` extrapolated linearly from a sample (see notes). wall = the child process from fork to exit; "
        "engine = the tool's own elapsed time (kvmigrate's `elapsed_seconds`, the alternative's "
        "`elapsed_seconds`). T* = charged requests on the busiest vault / (rate_limit / 10 s).",
        "",
    ]
    notes = [f"- `{run['id']}`: {'; '.join(run['notes'])}" for run in results["runs"] if run["notes"]]
    if notes:
        out += ["Notes:", "", *notes, ""]
    startup = results.get("startup")
    if startup:
        out += [
            f"Start-up (median of 5, included in every wall time, never subtracted): "
            f"`python -m kvmigrate --version` {startup['version']['wall_seconds']:.2f} s "
            f"({startup['version']['peak_rss_mb']:.0f} MB); importing what a copy imports "
            f"{startup['imports']['wall_seconds']:.2f} s ({startup['imports']['peak_rss_mb']:.0f} MB).",
            "",
        ]
    if results.get("speedups"):
        out += ["### kvmigrate against the usual ways", ""]
        out.append(
            _md_table(
                [
                    "vault",
                    "alternative",
                    "its wall s",
                    "kvmigrate wall s",
                    "kvmigrate speed-up",
                    "alternative moved / failed / 429s",
                ],
                [
                    [
                        f"{r['vault']} ({r['objects']:,})",
                        TOOLS[r["alternative"]],
                        f"{r['alternative_wall']:,.1f}" + (" (extrapolated)" if r["extrapolated"] else ""),
                        f"{r['kvmigrate_wall']:,.1f}",
                        f"{r['speedup']:.1f}x",
                        f"{_num(r['alternative_moved'])} / {_num(r['alternative_failed'])} / {r['alternative_429']:,}",
                    ]
                    for r in results["speedups"]
                ],
            )
        )
        out.append("")
    runs = _runs(results)
    whatif = [run for run in results["runs"] if run["case"] == "whatif"]
    if whatif:
        out += [
            "### What the suggested fixes would buy (what-if runs, same run)",
            "",
            "Each row runs kvmigrate through `benchmarks/whatif.py`, which patches kvmigrate or a library in "
            "memory to stand in for a suggested fix (see that file; nothing is shipped). Each is compared with "
            "the unpatched product on the same vault and settings: `whatif-none`, run back to back with the "
            "patched runs, or `adaptive-small` for the limiter.",
            "",
        ]
        rows = []
        for run in whatif:
            base = runs.get("adaptive-small") if "adaptive" in run["id"] else runs.get("whatif-none")
            label = run["tool"].replace("kvmigrate copy + ", "")
            rows.append(
                [
                    label,
                    f"{run['vault']} ({run['objects']:,})",
                    f"{run['wall_seconds']:.1f}",
                    f"{run['ratio']:.2f}",
                    _num(run["engine_ratio"], 2),
                    f"{100 * run['throttled_share']:.1f}%",
                    f"{run['cpu_seconds']:.1f}",
                    f"{run['other_load_cores']:.2f}",
                    f"{base['wall_seconds'] / run['wall_seconds']:.2f}x" if base and base is not run else "-",
                ]
            )
        out.append(
            _md_table(
                [
                    "variant",
                    "vault",
                    "wall s",
                    "wall/T*",
                    "engine/T*",
                    "429 share",
                    "CPU s",
                    "other load (cores)",
                    "speed vs unpatched",
                ],
                rows,
            )
        )
        out.append("")
    out += ["### Targets", ""]
    out.append(
        _md_table(
            ["target", "measured", "verdict"],
            [
                [r["target"], r["measured"], {True: "**met**", False: "**not met**", None: "not measured"}[r["met"]]]
                for r in results["targets"]
            ],
        )
    )
    profile = results.get("profile")
    if profile and "client" in profile:
        out += [
            "",
            "### Profile of a copy at the limit (`profile-small`)",
            "",
            f"Wall {profile['wall_seconds']:.1f} s; kvmigrate CPU {profile['client_cpu_seconds']:.1f} s; "
            f"emulator CPU {profile['emulator_cpu_seconds']:.1f} s (separate process, from /proc).",
            "",
        ]
        out += _profile_md("kvmigrate process", profile["client"])
        out += [""]
        out += _profile_md("emulator process", profile["emulator"], top=8)
    seeding = results.get("seeding")
    if seeding:
        out += [
            "",
            "Seeding (limits and latency off, not measured): "
            + "; ".join(f"{k} {v['objects']:,} objects in {v['seconds']:.1f} s" for k, v in seeding.items())
            + ".",
        ]
    return "\n".join(out)


def update_readme(path: Path, results: dict[str, Any]) -> None:
    """Replace the generated block of the README (between the markers), keeping the hand-written text."""
    block = f"{BEGIN}\n{markdown(results)}\n{END}"
    text = path.read_text(encoding="utf-8") if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text = text.rstrip("\n") + f"\n\n## Latest results\n\n{BEGIN}\n{END}\n"
    text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    path.write_text(text, encoding="utf-8")
