#!/usr/bin/env bash
# Resume after an interruption: stop a copy midway (SIGINT, as Ctrl-C does), rerun the same command.
. "$(dirname "$0")/lib.sh"
cat >"$WORK/vaults.toml" <<'TOML'
[defaults]
latency_ms = 40
[vaults.src]
[vaults.dst]
TOML
start_emulator "$WORK/vaults.toml"
$PYTHON "$(dirname "$0")/seed.py" "$KVMIGRATE_VAULT_SRC" --secrets 60 --keys 0 --certificates 0
$KVMIGRATE copy "$KVMIGRATE_VAULT_SRC" "$KVMIGRATE_VAULT_DST" --concurrency 2 -o json >first.json &
COPY=$!
sleep 2
kill -INT "$COPY"
status=0; wait "$COPY" || status=$?
echo "first run exited $status (130 = interrupted)"
$KVMIGRATE copy "$KVMIGRATE_VAULT_SRC" "$KVMIGRATE_VAULT_DST" -o json >second.json
$PYTHON -c "import json; d=json.load(open('second.json')); print('resumed: done before', d['previously_done'], 'copied now', d['copied'], 'failed', d['failed'])"
$KVMIGRATE verify "$KVMIGRATE_VAULT_SRC" "$KVMIGRATE_VAULT_DST"
echo "resume: OK"
