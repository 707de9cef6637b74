# Shared by the example scripts: start emulated vaults in the background and stop them on exit.
# Usage: . examples/lib.sh; start_emulator CONFIG_TOML   (then $KVMIGRATE_VAULT_<NAME> etc. are set)
set -euo pipefail
KVMIGRATE=${KVMIGRATE:-kvmigrate}
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kvmigrate-example.XXXXXX")
cleanup() { [ -n "${EMULATOR_PID:-}" ] && kill "$EMULATOR_PID" 2>/dev/null && wait "$EMULATOR_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

start_emulator() {
    $KVMIGRATE emulator --config "$1" --env-file "$WORK/emulator.env" --state-dir "$WORK/tls" >"$WORK/emulator.out" 2>&1 &
    EMULATOR_PID=$!
    for _ in $(seq 1 300); do [ -s "$WORK/emulator.env" ] && break; sleep 0.1; done
    [ -s "$WORK/emulator.env" ] || { cat "$WORK/emulator.out"; echo "emulator did not start" >&2; exit 1; }
    set -a; . "$WORK/emulator.env"; set +a
    cd "$WORK"
}
