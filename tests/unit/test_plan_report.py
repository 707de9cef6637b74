"""The plan's JSON and Markdown are streamed item by item; the JSON is byte for byte what ``json.dumps`` made."""

from __future__ import annotations

import io
import json

import pytest

from kvmigrate.models import Action
from kvmigrate.plan import Plan, PlanItem
from kvmigrate.report.plan import write_plan_json, write_plan_markdown


def small_plan() -> Plan:
    plan = Plan("https://a.vault.azure.net", "https://b.vault.azure.net", rps=50.0, source_pages=1, target_pages=2)
    plan.items = [
        PlanItem("certificate", "web-tls", 2, True, Action.COPY, ""),
        PlanItem("key", "signing", 1, None, Action.BLOCKED_NOT_EXPORTABLE, "keys cannot be exported"),
        PlanItem("secret", 'Ünïcode "quoted"', None, False, Action.SKIP_MANAGED, "belongs to a certificate"),
        PlanItem("secret", "db-password", 501, True, Action.TOO_MANY_VERSIONS, "501 versions: refused"),
    ]
    return plan


@pytest.mark.parametrize("plan", [small_plan(), Plan("a", "b", rps=1.0)], ids=["items", "empty"])
def test_streamed_json_is_the_document_json_dumps_made(plan: Plan) -> None:
    out = io.StringIO()
    write_plan_json(out, plan)
    assert out.getvalue() == json.dumps(plan.as_dict(), indent=2)
    document = json.loads(out.getvalue())
    assert list(document) == ["operation", "source", "target", "items", "blocked", "settings", "summary"]
    assert [(i["type"], i["name"]) for i in document["items"]] == [(i.type, i.name) for i in plan.items]
    assert list(document["summary"]) == ["objects", "counts", "requests", "eta_seconds", "rps", "warnings"]
    assert [i["name"] for i in document["blocked"]] == [i.name for i in plan.items if i.action.is_blocked]


def test_streamed_markdown_lists_every_object_in_order() -> None:
    plan = small_plan()
    out = io.StringIO()
    write_plan_markdown(out, plan)
    text = out.getvalue()
    assert text.startswith("# kvmigrate plan: `https://a.vault.azure.net` → `https://b.vault.azure.net`\n")
    rows = text.split("|---|---|---:|---|---|---|\n", 1)[1].splitlines()
    assert rows == [
        "| certificate | `web-tls` | 2 | true | copy |  |",
        "| key | `signing` | 1 |  | blocked-not-exportable | keys cannot be exported |",
        '| secret | `Ünïcode "quoted"` |  | false | skip-managed | belongs to a certificate |',
        "| secret | `db-password` | 501 | true | too-many-versions | 501 versions: refused |",
    ]
    assert text.endswith(" |\n")
