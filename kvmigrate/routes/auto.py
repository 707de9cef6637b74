"""``--mode auto``: blobs while the target takes them, values once it refuses them, decided inside the write.

The first blob the target refuses for its subscription or geography switches the rest of the run to values (keys
then stay behind, reported blocked); the refused object itself is read and written by value at once. An object is
resumed in the route its journal row was written in, and an object the target holds under other version ids is
settled by value, so an interrupted auto run never judges a half-written value copy by blob rules.
"""

from __future__ import annotations

import logging
from typing import Any

from kvmigrate.decide import reason_for
from kvmigrate.errors import ObjectBlockedError, WrongSecurityDomainError
from kvmigrate.journal import ItemRecord, Journal
from kvmigrate.models import Action, Listed, ObjectRef, ObjectType
from kvmigrate.ratelimit import AdaptiveRateLimiter
from kvmigrate.routes.base import Assessment, Match, Route, TargetEnd, TargetUpkeep

log = logging.getLogger(__name__)
SWITCH_NOTE = (
    "the target refused backup blobs (another subscription or geography): switched to value mode for secrets and "
    "certificates; keys cannot move this way"
)


class AutoRoute(TargetUpkeep):
    """Blob route first, value route after the target refuses a blob (see the module docstring)."""

    target: TargetEnd

    def __init__(self, blobs: Route, values: Route, *, limiters: dict[str, AdaptiveRateLimiter]) -> None:
        self.blobs = blobs
        self.values = values
        self.source = blobs.source
        self.target = blobs.target
        self.limiters = limiters
        self.settings = blobs.settings
        self.name = "auto"
        self.switched = False

    def blocked(self, listed: Listed) -> Action | None:
        return self.values.blocked(listed) if self.switched else None

    async def assess(
        self, listed: Listed, *, present: bool, row: ItemRecord | None, journal: Journal, thorough: bool
    ) -> Assessment:
        by_value = self.switched or (row is not None and row.route == "value")
        if by_value and listed.ref.type is not ObjectType.KEY:
            return await self.values.assess(listed, present=present, row=row, journal=journal, thorough=thorough)
        assessment = await self.blobs.assess(listed, present=present, row=row, journal=journal, thorough=thorough)
        if assessment.match is Match.DIFFERENT and listed.ref.type is not ObjectType.KEY and listed.enabled:
            # Other version ids: perhaps an earlier auto run's value copy, whole or half-written.
            by_values = await self.values.assess(listed, present=present, row=row, journal=journal, thorough=thorough)
            if by_values.match in (Match.SAME, Match.PREFIX):
                return by_values
        return assessment

    async def read(self, listed: Listed, assessment: Assessment) -> Any:
        route = self.values if assessment.route == "value" else self.blobs
        return await route.read(listed, assessment)

    async def write(self, listed: Listed, payload: Any, assessment: Assessment, journal: Journal) -> ObjectRef | None:
        if assessment.route == "value":
            return await self.values.write(listed, payload, assessment, journal)
        try:
            return await self.blobs.write(listed, payload, assessment, journal)
        except WrongSecurityDomainError:
            self._switch()
            by_value = await self.values.assess(listed, present=False, row=None, journal=journal, thorough=False)
            blocked = self.values.blocked(listed) or by_value.blocked
            if blocked is not None:
                raise ObjectBlockedError(reason_for(blocked), action=blocked.value) from None
            await journal.mark_restoring(listed.ref, route="value")  # the refused blob wrote nothing
            return await self.values.write(listed, await self.values.read(listed, by_value), by_value, journal)

    def _switch(self) -> None:
        if not self.switched:
            self.switched = True
            log.warning("%s", SWITCH_NOTE)

    def notes(self) -> list[str]:
        return [SWITCH_NOTE] if self.switched else []
