"""Run the kvmigrate CLI with experimental patches applied in-process, to measure what a fix would buy.

``BENCH_PATCHES=no-trust-env,journal-off python -m benchmarks.whatif copy SRC DST ...``. Nothing here is shipped or
changes kvmigrate's files; each patch stands in for a fix suggested in benchmarks/README.md, so the benchmark can say
"this fix would take the ratio from A to B" with numbers from the same run:

* ``none``: no patch (the baseline, run next to the others).
* ``no-trust-env``: aiohttp sessions with ``trust_env=False``. azure-core opens its aiohttp session with
  ``trust_env=True``, and aiohttp 3.10+ then runs two thread-pool hops per request (proxy variables and ``~/.netrc``).
  The fix would open the session once with ``trust_env=False`` and hand the proxies read at start-up to azure-core.
* ``shared-ssl``: one ``SSLContext`` per CA file. With ``connection_verify=<file>`` azure-core builds a new context
  for every request, so aiohttp (whose connection key includes the context) opens a new TLS connection each time.
* ``journal-nondurable``: the ``restoring`` commit without fsync (an upper bound of batching those fsyncs).
* ``journal-off``: journal calls do nothing (the upper bound of moving the journal off the event loop entirely).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterator
from typing import Any

PATCHES = ("none", "no-trust-env", "shared-ssl", "journal-nondurable", "journal-off")


def apply(patches: set[str]) -> None:
    unknown = patches - set(PATCHES)
    if unknown:
        raise SystemExit(f"unknown patch(es) {sorted(unknown)}; choose from {', '.join(PATCHES)}")
    if "no-trust-env" in patches:
        import aiohttp

        original_init = aiohttp.ClientSession.__init__

        @functools.wraps(original_init)
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            kwargs["trust_env"] = False
            original_init(self, *args, **kwargs)

        aiohttp.ClientSession.__init__ = init  # type: ignore[method-assign]
    if "shared-ssl" in patches:
        from azure.core.pipeline.transport import _aiohttp

        build = _aiohttp.AioHttpTransport._build_ssl_config
        cache: dict[Any, Any] = {}

        def cached(self: Any, cert: Any, verify: Any) -> Any:
            key = (repr(cert), repr(verify))
            if key not in cache:
                cache[key] = build(self, cert, verify)
            return cache[key]

        _aiohttp.AioHttpTransport._build_ssl_config = cached  # type: ignore[method-assign]
    if "journal-nondurable" in patches or "journal-off" in patches:
        from kvmigrate import journal

        if "journal-off" in patches:
            journal.Journal.get = lambda self, ref: None  # type: ignore[method-assign, assignment]
            journal.Journal.record_pending = lambda self, ref, versions: None  # type: ignore[method-assign]
            journal.Journal.mark = lambda self, ref, state, **kw: None  # type: ignore[method-assign]
        else:
            transaction = journal.Journal._transaction.__wrapped__  # type: ignore[attr-defined]

            @contextlib.contextmanager
            def relaxed(self: Any, *, durable: bool = False) -> Iterator[Any]:
                with contextlib.contextmanager(transaction)(self, durable=False) as connection:
                    yield connection

            journal.Journal._transaction = relaxed  # type: ignore[method-assign]


def main() -> None:
    apply({p.strip() for p in os.environ.get("BENCH_PATCHES", "").split(",") if p.strip()})
    from kvmigrate.cli import main as cli

    sys.argv[0] = "kvmigrate"
    cli()


if __name__ == "__main__":
    main()
