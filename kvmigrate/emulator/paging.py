"""Paged listings as Key Vault sends them (facts §7): ``maxresults``, ``$skiptoken`` and an absolute ``nextLink``.

A listing reads its paging parameters once (``PageQuery.read``), takes from its store only the objects after the
marker plus one look-ahead, and hands them to ``page``, which renders one page and the link to the next.

The ``$skiptoken`` is base64url JSON ``{"NextMarker": …, "TargetLocation": 0}`` as the service's is; clients treat
it as opaque. It also carries ``includePending`` of a certificate listing (``"IncludePending": true``): the recorded
service's nextLink of an ``includePending=true`` listing is ``?api-version=…&$skiptoken=…`` without the parameter
(recordings-js ``recording_can_list_certificates.json``), and the Python SDK follows a nextLink as given, so the
state has to travel inside the token for later pages to keep listing pending certificates. A client that sends
``includePending`` again on a later page is honoured too: the query parameter wins over the token.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kvmigrate.emulator.app import Call, JsonBody, Reply, Vault
from kvmigrate.emulator.errors import bad_parameter
from kvmigrate.emulator.material import MaterialError, b64url_decode, b64url_encode

MAX_PAGE = 25
_END = "\x00end"  # the marker of the trailing empty page of a deleted listing


@dataclass(frozen=True)
class PageQuery:
    """The paging parameters of one listing request."""

    size: int
    marker: str
    include_pending: bool
    maxresults: str | None  # as sent, so the nextLink repeats it

    @classmethod
    def read(cls, vault: Vault, call: Call) -> PageQuery:
        """Parse ``maxresults``, ``$skiptoken`` and ``includePending``; 400 BadParameter on a bad value."""
        query = call.request.query
        size = vault.settings.max_page_size
        maxresults = query.get("maxresults")
        if maxresults is not None:
            try:
                size = int(maxresults)
            except ValueError as exc:
                raise bad_parameter(f"maxresults must be an integer between 1 and {MAX_PAGE}.") from exc
            if not 1 <= size <= MAX_PAGE:
                raise bad_parameter(f"maxresults must be between 1 and {MAX_PAGE}.")
        marker, include_pending = "", False
        if "$skiptoken" in query:
            try:
                token = json.loads(b64url_decode(query["$skiptoken"]))
                marker, include_pending = token["NextMarker"], bool(token.get("IncludePending", False))
            except (MaterialError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise bad_parameter("The $skiptoken is invalid.") from exc
            if not isinstance(marker, str):
                raise bad_parameter("The $skiptoken is invalid.")
        flag = query.get("includePending")
        if flag is not None:
            if flag.lower() not in ("true", "false"):
                raise bad_parameter(f"The value '{flag}' is not valid for includePending; use true or false.")
            include_pending = flag.lower() == "true"
        return cls(size, marker, include_pending, maxresults)

    @property
    def at_end(self) -> bool:
        """True on the trailing empty page: nothing is left to list."""
        return self.marker == _END

    @property
    def window(self) -> int:
        """How many objects a listing fetches after the marker: one page and the look-ahead that decides nextLink."""
        return self.size + 1

    def next_link(self, vault: Vault, call: Call, marker: str) -> str:
        """The absolute nextLink, with the explicit port, api-version, token and maxresults as the service sends."""
        token: JsonBody = {"NextMarker": marker, "TargetLocation": 0}
        if self.include_pending:
            token["IncludePending"] = True
        url = call.request.url
        link = (
            f"https://{url.host}:{url.port or 443}{call.request.path}?api-version="
            f"{call.request.query.get('api-version', '')}&$skiptoken={b64url_encode(json.dumps(token).encode())}"
        )
        return link + (f"&maxresults={self.maxresults}" if self.maxresults is not None else "")


def page(
    vault: Vault,
    call: Call,
    query: PageQuery,
    items: Iterable[Any],
    key: Callable[[Any], str],
    render: Callable[[Any], JsonBody],
    *,
    trailing_empty: bool = False,
) -> Reply:
    """One page of ``items`` (sorted by ``key``; all of them or a window after the marker) and its nextLink.

    ``trailing_empty`` ends the listing with an empty page that still carries a nextLink, as the recorded deleted
    listings do, so clients that stop at the first empty page are caught.
    """
    if query.at_end:
        return Reply({"value": [], "nextLink": None})
    remaining = [item for item in items if key(item) > query.marker] if query.marker else list(items)
    chosen = remaining[: query.size]
    if len(remaining) > query.size:
        next_marker: str | None = key(chosen[-1])
    elif trailing_empty:
        next_marker = _END
    else:
        next_marker = None
    link = query.next_link(vault, call, next_marker) if next_marker is not None else None
    return Reply({"value": [render(item) for item in chosen], "nextLink": link})
