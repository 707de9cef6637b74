"""How a command runs: logging, signals, the one line an expected failure prints, and its exit code."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click
from pydantic import ValidationError

from kvmigrate.errors import KvmigrateError, UsageError
from kvmigrate.files import open_private, private_dir
from kvmigrate.report.text import safe

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
EXIT_INTERRUPTED = 130
#: After the second Ctrl-C the run is cancelled; if it has not ended this long after, the process exits.
HARD_STOP_SECONDS = 10.0


class _SafeFormatter(logging.Formatter):
    """Log lines with control characters escaped: names and vault messages come from outside."""

    def format(self, record: logging.LogRecord) -> str:
        return safe(super().format(record))


class _LogFileHandler(logging.StreamHandler[TextIO]):
    """The ``--log-file`` handler: a write that fails (disk full, quota) ends the file's log with one line on stderr.

    Why: logging's default reports every failed record with a traceback on stderr; the run itself goes on.
    """

    def __init__(self, stream: TextIO, path: Path) -> None:
        super().__init__(stream)
        self.path = path
        self.failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)  # a bug in a log call, not the file
            return
        self.failed = True
        reason = error.strerror or type(error).__name__
        sys.stderr.write(
            f"kvmigrate: warning: cannot write log file {safe(str(self.path))}: {reason}; the log file stops here, "
            "the run goes on (free space or choose another folder)\n"
        )


def setup_logging(verbose: bool, log_file: Path | None) -> None:
    """kvmigrate's own loggers only; azure-core's HTTP logging stays off so no body or header is ever logged."""
    logger = logging.getLogger("kvmigrate")
    logger.handlers.clear()
    logger.setLevel(logging.DEBUG if (verbose or log_file) else logging.WARNING)
    fmt = _SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.DEBUG if verbose else logging.WARNING)
    stderr.setFormatter(fmt)
    logger.addHandler(stderr)
    if log_file is not None:
        private_dir(log_file.parent, what="log folder")
        descriptor = open_private(log_file, what="log file", append=True)
        handler = _LogFileHandler(os.fdopen(descriptor, "a", encoding="utf-8"), log_file)
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    logging.getLogger("azure").setLevel(logging.ERROR)


def run_until_signal(make: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run a coroutine: the first SIGINT/SIGTERM sets ``stop`` (finish in-flight work), a second cancels it now.

    A third signal, or the cancelled run still going ``HARD_STOP_SECONDS`` later, ends the process (exit 130):
    "stop now" must always mean it. The journal stays consistent either way (SQLite, WAL).
    """

    async def runner() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            if signals == 1:
                click.echo("kvmigrate: stopping after the objects in flight (Ctrl-C again to stop now)", err=True)
                stop.set()
            elif signals == 2 and task is not None:
                task.cancel()
                loop.call_later(HARD_STOP_SECONDS, _hard_exit)
            else:
                _hard_exit()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal)
        return await make(stop)

    return asyncio.run(runner())


def _hard_exit() -> None:
    sys.stderr.write("kvmigrate: interrupted\n")
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


def fail(message: str, code: int) -> None:
    click.echo(f"kvmigrate: error: {safe(message)}", err=True)
    sys.exit(code)


def handle_errors(command: F) -> F:
    """Map expected failures to one line on stderr and an exit code; no tracebacks."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except KvmigrateError as exc:
            fail(str(exc), exc.exit_code)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors(include_url=False)
            )
            fail(problems, UsageError.exit_code)
        except asyncio.CancelledError:
            click.echo("kvmigrate: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except KeyboardInterrupt:
            click.echo("kvmigrate: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]
