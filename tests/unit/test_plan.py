"""The one decision function copy and plan share, and the plan's cost estimate (pure, no IO)."""

from __future__ import annotations

from kvmigrate.models import Action, ObjectRef, ObjectType
from kvmigrate.options import CopyOptions
from kvmigrate.plan import Plan, PlanItem, decide, pages

REF = ObjectRef(ObjectType.SECRET, "db-password")


def options(**overrides: object) -> CopyOptions:
    return CopyOptions.model_validate({"source": "a-vault", "target": "b-vault", **overrides})


def test_each_action() -> None:
    base = options()
    assert decide(REF, options=base, selected=False).action is Action.EXCLUDED
    assert decide(REF, options=base, managed=True).action is Action.SKIP_MANAGED
    assert decide(REF, options=base, source_versions=["v"] * 501).action is Action.TOO_MANY_VERSIONS
    assert decide(REF, options=base, source_versions=["v"] * 500).action is Action.COPY
    assert (
        decide(REF, options=base, source_versions=["a", "b"], target_versions=["b", "a"]).action
        is Action.ALREADY_COPIED
    )
    assert decide(REF, options=base, source_versions=["a"], target_versions=["c"]).action is Action.SKIP_EXISTING
    assert (
        decide(REF, options=options(on_conflict="fail"), source_versions=["a"], target_versions=["c"]).action
        is Action.CONFLICT_EXISTING
    )
    assert decide(REF, options=base, target_deleted=True).action is Action.CONFLICT_DELETED
    assert decide(REF, options=options(recover_deleted=True), target_deleted=True).action is Action.RECOVER_DELETED
    assert decide(REF, options=options(purge_deleted=True), target_deleted=True).action is Action.PURGE_AND_COPY
    assert decide(REF, options=base).action is Action.COPY


def test_unread_source_versions_are_never_called_equal() -> None:
    assert decide(REF, options=options(), source_versions=None, target_versions=["a"]).action is Action.SKIP_EXISTING


def test_cost_and_eta_follow_the_busier_vault() -> None:
    plan = Plan("https://a", "https://b", rps=100.0, source_pages=pages(250), target_pages=pages(0) * 2)
    plan.items = [PlanItem("secret", f"s{i}", 1, True, Action.COPY, "") for i in range(250)]
    plan.items.append(PlanItem("secret", "x", 1, True, Action.ALREADY_COPIED, ""))
    requests = plan.requests()
    assert requests["https://a"] == 3 + 10 + 250 + 1 and requests["https://b"] == 3 + 2 + 250 + 1
    assert plan.eta_seconds() == round(264 / 100, 2)
    assert plan.counts() == {"already-copied": {"secret": 1}, "copy": {"secret": 250}}
    assert pages(0) == 1 and pages(25) == 1 and pages(26) == 2
