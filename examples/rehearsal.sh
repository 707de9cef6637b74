#!/usr/bin/env bash
# A full rehearsal on emulated vaults: start them, seed the source, plan, copy, verify.
. "$(dirname "$0")/lib.sh"
cat >"$WORK/vaults.toml" <<'TOML'
[defaults]
latency_ms = 5
[vaults.prod-old]
[vaults.prod-new]
TOML
start_emulator "$WORK/vaults.toml"
$PYTHON "$(dirname "$0")/seed.py" "$KVMIGRATE_VAULT_PROD_OLD" --secrets 40 --keys 2 --certificates 1
$KVMIGRATE plan   "$KVMIGRATE_VAULT_PROD_OLD" "$KVMIGRATE_VAULT_PROD_NEW"
$KVMIGRATE copy   "$KVMIGRATE_VAULT_PROD_OLD" "$KVMIGRATE_VAULT_PROD_NEW"
$KVMIGRATE verify "$KVMIGRATE_VAULT_PROD_OLD" "$KVMIGRATE_VAULT_PROD_NEW"
echo "rehearsal: OK"
