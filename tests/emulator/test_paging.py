"""Listings across many pages through the official async SDK: every name once, in order, with continuation tokens.

The emulator pages from a sorted index by bisecting to the continuation marker; these tests pin that a listing still
matches Key Vault's order (upper-cased name) while objects are created, deleted and purged between pages.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from kvmigrate.emulator import Emulator
from kvmigrate.vault.clients import VaultClients

PAGE = 4


@dataclass(frozen=True)
class Ops:
    """The SDK calls of one object type that a listing test needs."""

    create: Callable[[VaultClients, str], Awaitable[Any]]
    delete: Callable[[VaultClients, str], Awaitable[Any]]
    purge: Callable[[VaultClients, str], Awaitable[Any]]
    pages: Callable[[VaultClients, str | None], AsyncIterator[AsyncIterator[Any]]]
    deleted_pages: Callable[[VaultClients], AsyncIterator[AsyncIterator[Any]]]


OPS = {
    "secret": Ops(
        create=lambda c, n: c.secrets.set_secret(n, "v"),
        delete=lambda c, n: c.secrets.delete_secret(n, _polling_interval=0.05),
        purge=lambda c, n: c.secrets.purge_deleted_secret(n),
        pages=lambda c, token: c.secrets.list_properties_of_secrets().by_page(continuation_token=token),
        deleted_pages=lambda c: c.secrets.list_deleted_secrets().by_page(),
    ),
    "key": Ops(
        create=lambda c, n: c.keys.create_ec_key(n),
        delete=lambda c, n: c.keys.delete_key(n, _polling_interval=0.05),
        purge=lambda c, n: c.keys.purge_deleted_key(n),
        pages=lambda c, token: c.keys.list_properties_of_keys().by_page(continuation_token=token),
        deleted_pages=lambda c: c.keys.list_deleted_keys().by_page(),
    ),
}


async def collect(pages: AsyncIterator[AsyncIterator[Any]]) -> list[list[str]]:
    return [[item.name async for item in page] async for page in pages]


def listing_order(names: set[str]) -> list[str]:
    return sorted(names, key=str.upper)


@pytest.fixture
def small_pages(emulator: Emulator) -> None:
    emulator.vaults["src"].vault.settings.max_page_size = PAGE


@pytest.mark.usefixtures("small_pages")
@pytest.mark.parametrize("kind", sorted(OPS))
async def test_listing_pages_every_name_once_in_order(src: VaultClients, kind: str) -> None:
    ops = OPS[kind]
    names = {f"{prefix}{i:02d}" for i in range(8) for prefix in ("page-", "Page0", "0x", "Z-")}
    for name in random.Random(7).sample(sorted(names), len(names)):  # created out of order
        await ops.create(src, name)

    pages = await collect(ops.pages(src, None))
    assert all(0 < len(page) <= PAGE for page in pages)
    assert [name for page in pages for name in page] == listing_order(names)
    assert len(pages) == -(-len(names) // PAGE)

    gone = set(listing_order(names)[5:17:2])  # across page boundaries, in the middle
    for name in gone:
        await ops.delete(src, name)
    active = [name for page in await collect(ops.pages(src, None)) for name in page]
    assert active == listing_order(names - gone)
    deleted = await collect(ops.deleted_pages(src))
    assert [name for page in deleted for name in page] == listing_order(gone)
    assert deleted[-1] == []  # the trailing empty page the recorded deleted listings end with

    purged = set(listing_order(gone)[1:4])
    for name in purged:
        await ops.purge(src, name)
    deleted = await collect(ops.deleted_pages(src))
    assert [name for page in deleted for name in page] == listing_order(gone - purged)
    active = [name for page in await collect(ops.pages(src, None)) for name in page]
    assert active == listing_order(names - gone)


@pytest.mark.usefixtures("small_pages")
@pytest.mark.parametrize("kind", sorted(OPS))
async def test_continuation_token_resumes_after_its_marker(src: VaultClients, kind: str) -> None:
    ops = OPS[kind]
    names = {f"name-{i:02d}" for i in range(0, 20, 2)}
    for name in names:
        await ops.create(src, name)
    pages = ops.pages(src, None)
    first = [item.name async for item in await anext(pages)]
    token = pages.continuation_token  # type: ignore[attr-defined]
    assert first == listing_order(names)[:PAGE] and token

    early, late = "name-01", "name-11"  # one before the marker, one after it
    await ops.create(src, early)
    await ops.create(src, late)
    await ops.delete(src, "name-12")
    rest = [name for page in await collect(ops.pages(src, token)) for name in page]
    assert rest == listing_order((names | {early, late}) - {"name-12"})[PAGE + 1 :]
