"""The built wheel installs into a clean virtual environment and both entry points work from it."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_installs_and_runs(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    wheel = next(dist.glob("kvmigrate-*.whl"))
    env_dir = tmp_path / "clean"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    for args in (["--help"], ["--version"], ["emulator", "--help"], ["copy", "--help"]):
        result = subprocess.run(
            [str(env_dir / "bin" / "kvmigrate"), *args], capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        assert result.returncode == 0 and result.stdout, (args, result.stderr)
    typed = subprocess.run(
        [
            str(python),
            "-c",
            "import kvmigrate, pathlib; print((pathlib.Path(kvmigrate.__file__).parent / 'py.typed').exists())",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert typed.stdout.strip() == "True"
