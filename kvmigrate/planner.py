"""``kvmigrate plan``: read both vaults (list and get only, under the same limiter as copy) and build a Plan.

Reads: one listing pass per type on each vault (the target's deleted objects included), the version list of every
selected source object (its count decides ``too-many-versions``), and the version list of each name present in both
vaults (to tell ``already-copied`` from ``skip-existing``). Never a backup, restore or any write.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from operator import attrgetter

from azure.core.credentials_async import AsyncTokenCredential

from kvmigrate.endpoints import Endpoints
from kvmigrate.inventory import TargetIndex, is_selected
from kvmigrate.models import Action, ObjectType
from kvmigrate.options import CopyOptions
from kvmigrate.plan import Decision, Plan, PlanItem, decide, pages
from kvmigrate.vault.adapter import Listed


async def build_plan(options: CopyOptions, *, credential: AsyncTokenCredential | None = None) -> Plan:
    """Plan a copy (or a restore from an archive) into ``options.target`` without writing anything."""
    async with Endpoints(
        options.operation,
        options.source,
        options.target,
        connection=options.connection,
        rps=options.rps,
        credential=credential,
        latest_only=options.latest_only,
    ) as vaults:
        plan = Plan(vaults.source_label, vaults.target_label, options.rps)
        index = await TargetIndex.load(vaults.target, options.types)
        target_counts = Counter(object_type for object_type, _ in index.active)
        deleted_counts = Counter(object_type for object_type, _ in index.deleted)
        plan.target_pages = sum(pages(target_counts[t]) + pages(deleted_counts[t]) for t in options.types)
        gate = asyncio.Semaphore(options.concurrency)
        listed_counts: Counter[str] = Counter()
        async with asyncio.TaskGroup() as group:
            for object_type in options.types:
                async for listed in vaults.source.list_objects(object_type):
                    listed_counts[object_type] += 1
                    await gate.acquire()
                    group.create_task(_plan_one(plan, listed, index, vaults, options, gate))
        plan.source_pages = sum(pages(listed_counts[t]) for t in options.types)
    # By type, then name without case: two stable sorts, so no (type, name) key tuple per object (13 → 8 MB at 100,000).
    plan.items.sort(key=lambda item: item.name.lower())
    plan.items.sort(key=attrgetter("type"))
    return plan


async def _plan_one(
    plan: Plan, listed: Listed, index: TargetIndex, ends: Endpoints, options: CopyOptions, gate: asyncio.Semaphore
) -> None:
    source, target = ends.source, ends.target
    by_value = options.mode == "value"
    try:
        ref = listed.ref
        selected = is_selected(ref.name, options.include, options.exclude)
        source_versions: list[str] | None = None
        target_versions: list[str] = []
        if selected and not listed.managed:
            source_versions = await source.versions(ref)
            if (ref.type, ref.key) in index.active:
                target_versions = await target.versions(ref)
        decision = decide(
            ref,
            options=options,
            managed=listed.managed,
            selected=selected,
            by_value=by_value,
            source_versions=source_versions,
            target_versions=target_versions,
            target_deleted=(ref.type, ref.key) in index.deleted,
        )
        if (
            by_value
            and decision.action is Action.COPY
            and ref.type is ObjectType.CERTIFICATE
            and ends.value_source is not None
            and not await ends.value_source.values.is_exportable(ref)
        ):
            decision = Decision(
                Action.BLOCKED_NOT_EXPORTABLE,
                "its private key is not exportable; re-issue it in the target or use backup mode",
            )
        plan.items.append(
            PlanItem(
                ref.type.value,
                ref.name,
                len(source_versions) if source_versions is not None else None,
                listed.enabled,
                decision.action,
                sys.intern(decision.reason),  # one shared string per distinct reason, not one per object
            )
        )
    finally:
        gate.release()
