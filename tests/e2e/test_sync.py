"""``kvmigrate sync``: a standby follows its source — new objects, new versions, attribute drift, settings, deletions.

Everything is checked through the official SDK against the target, version by version.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from azure.keyvault.certificates import CertificateContact, CertificatePolicy
from azure.keyvault.keys import KeyRotationLifetimeAction, KeyRotationPolicy, KeyRotationPolicyAction

from kvmigrate.emulator import Emulator
from kvmigrate.vault.clients import VaultClients
from tests.e2e.test_copy import _in_thread, _sleep, cli_env
from tests.e2e.test_trust import run
from tests.seed import assert_same_values, fill, version_map


def sync(emulator: Emulator, target: str, *args: str) -> list[str]:
    return ["sync", emulator.vaults["src"].url, emulator.vaults[target].url, *args, "-o", "json"]


async def names_of(clients: VaultClients) -> list[str]:
    return sorted([p.name async for p in clients.secrets.list_properties_of_secrets()])


async def test_a_value_standby_follows_every_kind_of_change(
    emulator: Emulator, src: VaultClients, far: VaultClients, tmp_path: Path
) -> None:
    names = fill(emulator, "src", 6, prefix="s", versions=2)
    await src.certificates.create_certificate("c1", CertificatePolicy.get_default(), _polling_interval=0.1)
    await src.keys.create_ec_key("k1")
    await src.certificates.set_contacts([CertificateContact(email="a@contoso.example")])
    emulator.vaults["far"].vault.settings.create_rate_limit = 0
    first, _ = await _in_thread(run, emulator, *sync(emulator, "far", "--mode", "value"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["copied"] == 7  # six secrets and the certificate; the key is blocked

    # Everything a standby must follow.
    await src.secrets.set_secret("s-new", "brand new")  # a new object
    await src.secrets.set_secret("s-0000", "a third version", tags={"rev": "2"}, content_type="text/plain")
    await src.certificates.create_certificate("c1", CertificatePolicy.get_default(), _polling_interval=0.1)
    await src.certificates.create_certificate("c2", CertificatePolicy.get_default(), _polling_interval=0.1)
    versions = sorted(
        [p async for p in src.secrets.list_properties_of_secret_versions("s-0001")], key=lambda p: p.created_on
    )
    await src.secrets.update_secret_properties("s-0001", versions[-1].version, tags={"owner": "ops"})  # current
    await src.secrets.update_secret_properties("s-0001", versions[0].version, content_type="application/json")  # old
    older = sorted(
        [p async for p in src.secrets.list_properties_of_secret_versions("s-0002")], key=lambda p: p.created_on
    )
    await src.secrets.update_secret_properties("s-0002", older[0].version, enabled=False)  # an older one disabled
    expiry = dt.datetime(2033, 3, 3, tzinfo=dt.UTC)
    current = sorted(
        [p async for p in src.secrets.list_properties_of_secret_versions("s-0003")], key=lambda p: p.created_on
    )
    await src.secrets.update_secret_properties("s-0003", current[-1].version, expires_on=expiry)
    await src.certificates.set_contacts([CertificateContact(email="b@contoso.example", name="B")])
    await src.secrets.delete_secret("s-0005", _polling_interval=0.05)
    emulator.vaults["src"].vault.stats.reset()

    kept, _ = await _in_thread(run, emulator, *sync(emulator, "far", "--mode", "value", "--deep"), cwd=tmp_path)
    document = json.loads(kept.stdout)
    assert kept.returncode == 0, kept.stderr
    assert document["copied"] == 2 and document["updated"] == 5  # s-new, c2; s-0000 s-0001 s-0002 s-0003 c1
    assert document["appended_versions"] == 2 and document["updated_attributes"] == 4
    assert "s-0005" in await names_of(far)  # without --delete, nothing goes
    live = [n for n in names if n != "s-0005"] + ["s-new"]
    await assert_same_values(src, far, live)
    assert [c.email for c in await far.certificates.get_contacts()] == ["b@contoso.example"]
    verified, _ = await _in_thread(
        run,
        emulator,
        "verify",
        emulator.vaults["src"].url,
        emulator.vaults["far"].url,
        "--mode",
        "value",
        "--types",
        "secrets,certificates",
        "--one-way",
        cwd=tmp_path,
    )
    assert verified.returncode == 0, verified.stdout

    deleted, _ = await _in_thread(run, emulator, *sync(emulator, "far", "--mode", "value", "--delete"), cwd=tmp_path)
    assert json.loads(deleted.stdout)["deleted"] == 1
    assert "s-0005" not in await names_of(far)
    assert [d.name async for d in far.secrets.list_deleted_secrets()] == ["s-0005"]  # soft-deleted, never purged


async def test_a_backup_standby_keeps_ids_fixes_drift_and_names_what_cannot_follow(
    emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path
) -> None:
    fill(emulator, "src", 4, prefix="b", versions=2)
    await src.keys.create_rsa_key("rk")
    first, _ = await _in_thread(run, emulator, *sync(emulator, "dst"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    await src.secrets.set_secret("b-new", "new")
    await src.keys.update_key_rotation_policy(
        "rk",
        KeyRotationPolicy(),
        lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P60D")],
    )
    props = [p async for p in src.secrets.list_properties_of_secret_versions("b-0000")]
    for p in props:
        await src.secrets.update_secret_properties("b-0000", p.version, tags={"env": "prod"})
    second, _ = await _in_thread(run, emulator, *sync(emulator, "dst"), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert await version_map(dst) == await version_map(src)  # version ids, attributes and tags, exactly
    policy = await dst.keys.get_key_rotation_policy("rk")
    assert [a.time_after_create for a in policy.lifetime_actions if str(a.action).lower().endswith("rotate")] == [
        "P60D"
    ]
    await src.secrets.set_secret("b-0001", "a new version")
    third, _ = await _in_thread(run, emulator, *sync(emulator, "dst"), cwd=tmp_path)
    document = json.loads(third.stdout)
    assert third.returncode == 1 and [f["name"] for f in document["failures"]] == ["b-0001"]
    assert "--mode auto" in document["failures"][0]["error"]


async def test_a_source_that_lost_most_of_its_objects_deletes_nothing(
    emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path
) -> None:
    fill(emulator, "src", 20, prefix="d")
    first, _ = await _in_thread(run, emulator, *sync(emulator, "dst"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    store = emulator.vaults["src"].vault.secrets
    for i in range(15):
        del store.active[f"d-{i:04d}"]  # an emptied (or wrong) source
    emptied, _ = await _in_thread(run, emulator, *sync(emulator, "dst", "--delete"), cwd=tmp_path)
    document = json.loads(emptied.stdout)
    assert emptied.returncode == 1 and document["deleted"] == 0
    assert "refused: 15 of the target's 20 objects would be deleted" in document["failures"][0]["error"]
    assert len(await names_of(dst)) == 20
    planned, _ = await _in_thread(
        run,
        emulator,
        "sync",
        emulator.vaults["src"].url,
        emulator.vaults["dst"].url,
        "--delete",
        "--max-delete",
        "100%",
        "--dry-run",
        "-o",
        "json",
        cwd=tmp_path,
    )
    items = json.loads(planned.stdout)["items"]
    assert [i["action"] for i in items[:15]] == ["delete"] * 15  # a dry run lists every change, deletions first
    assert len(await names_of(dst)) == 20


async def test_a_kill_during_a_sync_of_new_versions_duplicates_nothing(
    emulator: Emulator, src: VaultClients, far: VaultClients, tmp_path: Path
) -> None:
    names = fill(emulator, "src", 150, prefix="k")
    emulator.vaults["far"].vault.settings.create_rate_limit = 0
    args = sync(emulator, "far", "--mode", "value", "--create-rps", "300")
    first, _ = await _in_thread(run, emulator, *args, cwd=tmp_path, timeout=120)
    assert first.returncode == 0, first.stderr
    store = emulator.vaults["src"].vault.secrets
    from kvmigrate.emulator.store import Version, new_version_id

    for name in names:
        for index in (1, 2):
            moment = 1_800_000_000 + index * 60
            store.get(name).add(
                Version(id=new_version_id(), created=moment, updated=moment, data={"value": f"{name}-{index}"})
            )
    writes = emulator.vaults["far"].vault.stats.started
    before = writes.get("secrets.set", 0)
    process = subprocess.Popen(
        [sys.executable, "-m", "kvmigrate", *args],
        env=cli_env(emulator),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while writes.get("secrets.set", 0) - before < 120 and time.monotonic() < deadline:
        await _sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    rerun, _ = await _in_thread(run, emulator, *args, cwd=tmp_path, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    await assert_same_values(src, far, names)


async def test_a_sync_with_nothing_to_do_only_lists(emulator: Emulator, tmp_path: Path) -> None:
    count = 5000
    fill(emulator, "src", count, prefix="n")
    for vault in ("src", "dst"):
        emulator.vaults[vault].vault.settings.rate_limit = 0
    first, _ = await _in_thread(run, emulator, *sync(emulator, "dst", "--rps", "3000"), cwd=tmp_path, timeout=240)
    assert first.returncode == 0 and json.loads(first.stdout)["copied"] == count, first.stderr
    idle, _ = await _in_thread(run, emulator, *sync(emulator, "dst"), cwd=tmp_path, timeout=120)
    document = json.loads(idle.stdout)
    assert idle.returncode == 0 and document["previously_done"] == count
    budget = math.ceil(count / 25) * 2 + 10
    for vault, requests in document["requests_by_vault"].items():
        assert requests <= budget, (vault, requests, budget)


def read_summaries(stream: IO[bytes], count: int) -> bytes:
    """What a ``-o json`` run printed up to the end of its ``count``-th summary (or its end of output)."""
    lines: list[bytes] = []
    while sum(line == b"}\n" for line in lines) < count and (line := stream.readline()):
        lines.append(line)
    return b"".join(lines)


def json_documents(text: str) -> list[dict[str, object]]:
    """Every JSON document in ``text``, one after another (raises on anything else)."""
    decoder, documents, rest = json.JSONDecoder(), [], text.strip()
    while rest:
        document, end = decoder.raw_decode(rest)
        documents.append(document)
        rest = rest[end:].lstrip()
    return documents


async def test_every_repeats_until_sigterm_then_stops_cleanly(emulator: Emulator, tmp_path: Path) -> None:
    fill(emulator, "src", 5, prefix="e")
    args = [sys.executable, "-m", "kvmigrate", *sync(emulator, "dst", "--every", "2s")]
    process = subprocess.Popen(
        args, env=cli_env(emulator), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    try:
        head = await asyncio.wait_for(_in_thread(read_summaries, process.stdout, 3), timeout=60)
    except TimeoutError:
        process.kill()  # its end of output also ends the reading thread
        raise
    process.send_signal(signal.SIGTERM)  # the third run has printed its summary: waiting for the next now
    rest, err = await _in_thread(process.communicate, timeout=30)  # type: ignore[arg-type]
    assert process.returncode == 0, err
    runs = err.count(b"journal: ")
    documents = json_documents((head + rest).decode())
    assert runs == 3 and len(documents) == runs, (runs, documents)  # each run's summary, once
    assert [d["operation"] for d in documents] == ["sync"] * 3 and b"Traceback" not in err
    assert [d["copied"] for d in documents] == [5, 0, 0]
