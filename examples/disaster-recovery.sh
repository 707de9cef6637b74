#!/usr/bin/env bash
# Disaster recovery: back a vault up to an archive, inspect it, restore it into a fresh vault of the same
# subscription and geography, verify.
. "$(dirname "$0")/lib.sh"
cat >"$WORK/vaults.toml" <<'TOML'
[vaults.primary]
subscription = "11111111-1111-1111-1111-111111111111"
[vaults.standby]
subscription = "11111111-1111-1111-1111-111111111111"
TOML
start_emulator "$WORK/vaults.toml"
$PYTHON "$(dirname "$0")/seed.py" "$KVMIGRATE_VAULT_PRIMARY" --secrets 20 --keys 2 --certificates 1
$KVMIGRATE backup "$KVMIGRATE_VAULT_PRIMARY" ./dr-archive
$KVMIGRATE archive inspect ./dr-archive
$KVMIGRATE plan ./dr-archive "$KVMIGRATE_VAULT_STANDBY"
$KVMIGRATE restore ./dr-archive "$KVMIGRATE_VAULT_STANDBY"
$KVMIGRATE verify "$KVMIGRATE_VAULT_PRIMARY" "$KVMIGRATE_VAULT_STANDBY"
echo "disaster-recovery: OK"
