#!/usr/bin/env bash
# A CI job: run `kvmigrate plan -o json` and fail the pipeline when anything would conflict or fail.
. "$(dirname "$0")/lib.sh"
cat >"$WORK/vaults.toml" <<'TOML'
[vaults.src]
[vaults.dst]
TOML
start_emulator "$WORK/vaults.toml"
$PYTHON "$(dirname "$0")/seed.py" "$KVMIGRATE_VAULT_SRC" --secrets 10 --keys 0 --certificates 0
gate() {
    $KVMIGRATE plan "$KVMIGRATE_VAULT_SRC" "$KVMIGRATE_VAULT_DST" -o json >plan.json
    $PYTHON - <<'PY'
import json, sys
plan = json.load(open("plan.json"))
blocking = {"skip-existing", "conflict-existing", "conflict-deleted", "too-many-versions", "blocked-not-exportable"}
bad = [i for i in plan["items"] if i["action"] in blocking]
for item in bad:
    print(f"plan gate: {item['type']} {item['name']}: {item['action']} ({item['reason']})")
print(f"plan gate: {len(plan['items'])} objects, {len(bad)} blocking; eta {plan['summary']['eta_seconds']} s")
sys.exit(1 if bad else 0)
PY
}
gate && echo "gate passes on a clean target"
# Someone created a secret of the same name in the target: the gate must fail.
$PYTHON "$(dirname "$0")/seed.py" "$KVMIGRATE_VAULT_DST" --secrets 1 --versions 1 --keys 0 --certificates 0
if gate; then echo "gate should have failed" >&2; exit 1; fi
echo "ci-plan-gate: OK"
