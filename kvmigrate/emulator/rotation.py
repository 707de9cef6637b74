"""Key rotation: ``GET``/``PUT /keys/{name}/rotationpolicy`` and ``POST /keys/{name}/rotate`` (facts §17).

Shapes as recorded (recordings-js ``keys/keyrotation``, api-version 7.6):

* a key that never had a policy answers the service's default, with no ``id`` and ``"attributes": null``:
  ``{"lifetimeActions": [{"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "Notify"}}],
  "attributes": null}``;
* a PUT answers ``{"id": ".../keys/{name}/rotationpolicy", "lifetimeActions": [...], "attributes": {"expiryTime"?,
  "created", "updated"}}``; a policy without a Notify action gets the default Notify (30 days before expiry) added
  after the given actions; ``created`` survives a later PUT;
* ``rotate`` makes a new version with the current one's key type, size or curve and operations, ``exp`` = created +
  ``expiryTime`` when the policy has one; the answer is the new KeyBundle.

Validation (the spec, the key-rotation docs and the SDK docstrings; the messages are guesses in the service's style,
400 BadParameter): ``lifetimeActions`` is a list of at most one Rotate and one Notify action (``type`` compared
case-insensitively and written back as ``Rotate``/``Notify``); each trigger has exactly one of ``timeAfterCreate``
and ``timeBeforeExpiry``, ISO 8601 durations; ``timeAfterCreate`` applies to Rotate only; both triggers are at least
P7D; ``expiryTime`` is at least P28D, and with it a trigger must leave at least 7 days before expiry; a Rotate
before expiry needs ``expiryTime``. A Notify before expiry without ``expiryTime`` is accepted, as recorded.

Lifecycle decisions: **a backup blob does not carry the policy** (the relocation guide: "backup and restore doesn't
preserve your autorotation settings"), so a restored key answers the default; the policy is part of the key object
otherwise, so soft delete and recover keep it and purge drops it with the key. The emulator stores and validates the
policy but never rotates on its own (there is no scheduler): clients call ``rotate``. A certificate's managed key
answers GET with its policy, but PUT and rotate answer the 403 of a direct write to a managed key (guess: a rotation
would make a key version without its certificate). Permissions: ``getrotationpolicy``, ``setrotationpolicy`` and
``rotate`` (the access-policy names the service's 403s use).
"""

from __future__ import annotations

import calendar
import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from kvmigrate.emulator.app import Call, JsonBody, Reply, Route, Vault, now, route
from kvmigrate.emulator.errors import bad_parameter
from kvmigrate.emulator.objects import managed_forbidden, name_checked
from kvmigrate.emulator.store import Item

POLICY = "rotation_policy"  # the Item.extra member that holds a key's policy
ACTIONS = {"rotate": "Rotate", "notify": "Notify"}
TRIGGERS = ("timeAfterCreate", "timeBeforeExpiry")
DEFAULT_NOTIFY: JsonBody = {"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "Notify"}}
MIN_TRIGGER = timedelta(days=7)
MIN_EXPIRY = timedelta(days=28)
_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


def after(start: datetime, duration: str) -> datetime:
    """``start`` plus an ISO 8601 duration; years and months are calendar steps (the day clamped to the month)."""
    parts = {name: int(value or 0) for name, value in _DURATION.fullmatch(duration).groupdict().items()}  # type: ignore[union-attr]
    month_index = start.month - 1 + parts["months"] + 12 * parts["years"]
    year, month = start.year + month_index // 12, month_index % 12 + 1
    moved = start.replace(year=year, month=month, day=min(start.day, calendar.monthrange(year, month)[1]))
    return moved + timedelta(
        weeks=parts["weeks"],
        days=parts["days"],
        hours=parts["hours"],
        minutes=parts["minutes"],
        seconds=parts["seconds"],
    )


def _length(duration: str) -> timedelta:
    """How long a duration is from now (what the minimums compare)."""
    start = datetime.now(UTC)
    return after(start, duration) - start


def _duration(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _DURATION.fullmatch(value):
        raise bad_parameter(f"Invalid rotation policy: {where} must be an ISO 8601 duration such as P90D or P1Y.")
    return value


def _action(raw: Any, position: int) -> JsonBody:
    where = f"lifetimeActions[{position}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("trigger"), dict) or not isinstance(raw.get("action"), dict):
        raise bad_parameter(f"Invalid rotation policy: {where} must be an object with a trigger and an action.")
    kind = raw["action"].get("type")
    if not isinstance(kind, str) or kind.lower() not in ACTIONS:
        raise bad_parameter(f"Invalid rotation policy: {where}.action.type must be Rotate or Notify.")
    given = [name for name in TRIGGERS if raw["trigger"].get(name) is not None]
    if len(given) != 1:
        raise bad_parameter(
            f"Invalid rotation policy: {where}.trigger must have exactly one of timeAfterCreate and timeBeforeExpiry."
        )
    trigger = given[0]
    value = _duration(raw["trigger"][trigger], f"{where}.trigger.{trigger}")
    if ACTIONS[kind.lower()] == "Notify" and trigger == "timeAfterCreate":
        raise bad_parameter(f"Invalid rotation policy: {where}: a Notify action takes only timeBeforeExpiry.")
    if _length(value) < MIN_TRIGGER:
        raise bad_parameter(f"Invalid rotation policy: {where}.trigger.{trigger} must be at least P7D (7 days).")
    return {"trigger": {trigger: value}, "action": {"type": ACTIONS[kind.lower()]}}


def _validated(body: JsonBody) -> tuple[list[JsonBody], str | None]:
    """The lifetime actions (the default Notify added when none is given) and the expiry time of a PUT body."""
    raw_actions = body.get("lifetimeActions")
    if raw_actions is None:
        raw_actions = []
    if not isinstance(raw_actions, list):
        raise bad_parameter("Invalid rotation policy: lifetimeActions must be a list.")
    actions = [_action(raw, position) for position, raw in enumerate(raw_actions)]
    kinds = [action["action"]["type"] for action in actions]
    if len(set(kinds)) != len(kinds):
        raise bad_parameter("Invalid rotation policy: lifetimeActions may hold one Rotate and one Notify action.")
    attributes = body.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise bad_parameter("Invalid rotation policy: attributes must be an object.")
    expiry = attributes.get("expiryTime")
    if expiry is not None:
        expiry = _duration(expiry, "attributes.expiryTime")
        if _length(expiry) < MIN_EXPIRY:
            raise bad_parameter("Invalid rotation policy: attributes.expiryTime must be at least P28D (28 days).")
    for position, action in enumerate(actions):
        ((trigger, value),) = action["trigger"].items()
        if expiry is None:
            if action["action"]["type"] == "Rotate" and trigger == "timeBeforeExpiry":
                raise bad_parameter(
                    f"Invalid rotation policy: lifetimeActions[{position}] rotates before expiry, which needs "
                    "attributes.expiryTime."
                )
            continue
        if _length(expiry) - _length(value) < MIN_TRIGGER:
            raise bad_parameter(
                f"Invalid rotation policy: lifetimeActions[{position}].trigger.{trigger} must leave at least 7 days "
                f"before the expiry time {expiry}."
            )
    if "Notify" not in kinds:
        actions.append(copy.deepcopy(DEFAULT_NOTIFY))
    return actions, expiry


def policy_body(vault: Vault, item: Item) -> JsonBody:
    """The policy of a key as GET answers it: its own, or the service's default (no id, attributes null)."""
    policy = item.extra.get(POLICY)
    if policy is None:
        return {"lifetimeActions": [copy.deepcopy(DEFAULT_NOTIFY)], "attributes": None}
    return {"id": vault.object_id("keys", item.name, "rotationpolicy"), **copy.deepcopy(policy)}


async def get_rotation_policy(vault: Vault, call: Call) -> Reply:
    return Reply(policy_body(vault, vault.keys.get(call.params["name"])))


async def set_rotation_policy(vault: Vault, call: Call) -> Reply:
    body = call.json()
    item = vault.keys.get(call.params["name"])
    if item.managed:
        raise managed_forbidden("key", "setrotationpolicy")
    actions, expiry = _validated(body)
    stamp = now()
    previous = item.extra.get(POLICY)
    attributes: JsonBody = {"expiryTime": expiry} if expiry is not None else {}
    attributes["created"] = previous["attributes"]["created"] if previous else stamp
    attributes["updated"] = stamp
    item.extra[POLICY] = {"lifetimeActions": actions, "attributes": attributes}
    return Reply(policy_body(vault, item))


def rotated_expiry(item: Item, stamp: int) -> int | None:
    """``exp`` of a version that ``rotate`` makes at ``stamp``: stamp + the policy's ``expiryTime``, if it has one."""
    expiry = ((item.extra.get(POLICY) or {}).get("attributes") or {}).get("expiryTime")
    return int(after(datetime.fromtimestamp(stamp, UTC), expiry).timestamp()) if expiry else None


def routes() -> list[Route]:
    """Registered before ``GET /keys/{name}/{version}``, which would take ``rotationpolicy`` for a version; the
    ``rotate`` route itself is in keys.py, beside the other ways of making a key version."""
    return [
        route(
            "GET",
            "/keys/{name}/rotationpolicy",
            "keys.get_rotation_policy",
            "getrotationpolicy",
            name_checked(get_rotation_policy),
        ),
        route(
            "PUT",
            "/keys/{name}/rotationpolicy",
            "keys.set_rotation_policy",
            "setrotationpolicy",
            name_checked(set_rotation_policy),
        ),
    ]
