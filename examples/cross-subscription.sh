#!/usr/bin/env bash
# Move secrets and certificates into a vault of another subscription and geography with --mode value
# (backup blobs cannot go there); keys are reported as blocked.
. "$(dirname "$0")/lib.sh"
cat >"$WORK/vaults.toml" <<'TOML'
[vaults.westeurope]
subscription = "aaaaaaaa-0000-0000-0000-000000000001"
geography = "europe"
[vaults.eastus]
subscription = "bbbbbbbb-0000-0000-0000-000000000002"
geography = "us"
TOML
start_emulator "$WORK/vaults.toml"
$PYTHON "$(dirname "$0")/seed.py" "$KVMIGRATE_VAULT_WESTEUROPE" --secrets 15 --versions 3 --keys 1 --certificates 1
$KVMIGRATE plan   "$KVMIGRATE_VAULT_WESTEUROPE" "$KVMIGRATE_VAULT_EASTUS" --mode value
$KVMIGRATE copy   "$KVMIGRATE_VAULT_WESTEUROPE" "$KVMIGRATE_VAULT_EASTUS" --mode value
$KVMIGRATE verify "$KVMIGRATE_VAULT_WESTEUROPE" "$KVMIGRATE_VAULT_EASTUS" --mode value --types secrets,certificates
echo "cross-subscription: OK"
