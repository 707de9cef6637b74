"""The one decision path (decide.py) and the plan's cost estimate: pure, no IO."""

from __future__ import annotations

from kvmigrate.decide import REASONS, decide_assessed, decide_listed
from kvmigrate.journal import ItemRecord
from kvmigrate.models import Action, ItemState, Listed, ObjectRef, ObjectType, Outcome
from kvmigrate.options import CopyOptions
from kvmigrate.plan import Plan, PlanItem, pages
from kvmigrate.routes.base import Assessment, Match

LISTED = Listed(ObjectRef(ObjectType.SECRET, "db-password"), enabled=True, fingerprint="now")


def options(**overrides: object) -> CopyOptions:
    return CopyOptions.model_validate({"source": "a-vault", "target": "b-vault", **overrides})


def row(state: ItemState = ItemState.DONE, fingerprint: str | None = "now") -> ItemRecord:
    return ItemRecord(LISTED.ref, state, "blob", fingerprint, None, Outcome.COPIED, None, None, 0)


def test_what_needs_no_request() -> None:
    def listed(action_of: Listed, **kw: object) -> Action | None:
        decision = decide_listed(action_of, **{"selected": True, "blocked": None, "row": None, "present": False, **kw})  # type: ignore[arg-type]
        return None if decision is None else decision.action

    assert listed(LISTED, selected=False) is Action.EXCLUDED
    assert listed(Listed(LISTED.ref, managed=True)) is Action.SKIP_MANAGED
    assert listed(Listed(LISTED.ref, pending=True)) is Action.PENDING
    assert listed(LISTED, blocked=Action.BLOCKED_DISABLED) is Action.BLOCKED_DISABLED
    assert listed(LISTED, row=row(), present=True) is Action.PREVIOUSLY_DONE
    assert listed(LISTED, row=row(), present=False) is None  # the target lost it: decided again
    assert listed(LISTED, row=row(fingerprint="before"), present=True) is None  # changed in the source
    assert listed(LISTED, row=row(fingerprint=None), present=True) is None  # an upgraded journal: not trusted
    assert listed(LISTED, row=row(ItemState.SKIPPED), present=True) is None  # skips are decided afresh


def test_each_assessed_action() -> None:
    base = options()

    def decide(match: Match, *, opts: CopyOptions = base, deleted: bool = False, **kw: object) -> Action:
        assessment = Assessment(match, "blob", **kw)  # type: ignore[arg-type]
        return decide_assessed(LISTED, assessment, options=opts, target_deleted=deleted, row=None).action

    assert decide(Match.SAME) is Action.ALREADY_COPIED
    assert decide(Match.PREFIX) is Action.RESUME
    assert decide(Match.DIFFERENT) is Action.SKIP_EXISTING
    assert decide(Match.DIFFERENT, opts=options(on_conflict="fail")) is Action.CONFLICT_EXISTING
    assert decide(Match.ABSENT) is Action.COPY
    assert decide(Match.ABSENT, deleted=True) is Action.CONFLICT_DELETED
    assert decide(Match.ABSENT, deleted=True, opts=options(recover_deleted=True)) is Action.RECOVER_DELETED
    assert decide(Match.ABSENT, deleted=True, opts=options(purge_deleted=True)) is Action.PURGE_AND_COPY
    assert decide(Match.ABSENT, too_many_versions=True, versions=501) is Action.TOO_MANY_VERSIONS
    assert decide(Match.ABSENT, blocked=Action.BLOCKED_NOT_EXPORTABLE) is Action.BLOCKED_NOT_EXPORTABLE
    assert set(REASONS) == set(Action)  # one table of reasons, every action in it


def test_a_change_since_the_earlier_run_is_named() -> None:
    changed = Listed(LISTED.ref, enabled=True, fingerprint="after")
    assessment = Assessment(Match.DIFFERENT, "blob")
    decision = decide_assessed(changed, assessment, options=options(), target_deleted=False, row=row())
    assert decision.action is Action.SKIP_EXISTING and "changed in the source since" in decision.reason
    missing = decide_assessed(
        LISTED, Assessment(Match.ABSENT, "blob"), options=options(), target_deleted=False, row=row()
    )
    assert missing.action is Action.COPY and "no longer has it" in missing.reason


def test_cost_and_eta_follow_the_busier_vault() -> None:
    plan = Plan("https://a", "https://b", rps=100.0, source_pages=pages(250), target_pages=pages(0) * 2)
    plan.items = [PlanItem("secret", f"s{i}", 1, True, Action.COPY, "") for i in range(250)]
    plan.items.append(PlanItem("secret", "x", 1, True, Action.ALREADY_COPIED, "", compared=True))
    requests = plan.requests()
    assert requests["https://a"] == 3 + 10 + 250 + 1 and requests["https://b"] == 3 + 2 + 250 + 1
    assert plan.eta_seconds() == round(264 / 100, 2)
    assert plan.counts() == {"already-copied": {"secret": 1}, "copy": {"secret": 250}}
    assert pages(0) == 1 and pages(25) == 1 and pages(26) == 2


def test_value_plans_count_every_read_and_write_under_the_create_budget() -> None:
    plan = Plan("https://a", "https://b", rps=400.0, by_value=True, source_pages=1, target_pages=6, create_rps=25.0)
    plan.items = [PlanItem("secret", f"s{i}", 3, True, Action.COPY, "") for i in range(100)]
    source, target = plan.requests().values()
    assert source == 3 + 1 + 100 * (2 + 3)  # version list, current version, three values each
    assert target == 3 + 6 + 300  # one create per version
    assert plan.eta_seconds() == 300 / 25.0  # the create budget, not the request rate, bounds it
