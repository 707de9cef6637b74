#!/usr/bin/env bash
# az CLI's own per-object workflow against emulated vaults that look like the real ones, then kvmigrate on what az
# wrote. Shows that the emulator is a stand-in unmodified az CLI accepts, end to end: `az login --identity`
# (App Service managed identity + the emulator's minimal ARM), then the twelve documented commands.
#
#   sudo make interop            # installs azure-cli into .venv-az (once) and runs this script
#   AZ=/path/to/az KVMIGRATE=kvmigrate examples/az-cli-workflow.sh
#
# Needs root: it binds port 443 on 127.0.0.2-127.0.0.5 and adds /etc/hosts lines for kvsrc.vault.azure.net,
# kvdst.vault.azure.net, kvmig.vault.azure.net and management.azure.com. The lines carry a marker and are removed on
# exit (and a copy of /etc/hosts is kept until then); az's profile lives in a temporary AZURE_CONFIG_DIR, never
# ~/.azure. TLS is verified everywhere: az trusts the emulator's CA through REQUESTS_CA_BUNDLE.
#
# The twelve: for each of secret, key and certificate,
#   az keyvault T backup  --file F --name N --vault-name kvsrc --subscription S
#   az keyvault T restore --file F --vault-name kvdst
#   az keyvault T show    --name N --vault-name kvdst     (checked against the source)
#   az keyvault T list    --vault-name kvdst              (checked to list N)
#
# Then kvmigrate takes over what az wrote: `kvmigrate restore` of az's folder of backup files into kvmig and
# `kvmigrate verify kvsrc kvmig` (KVMIGRATE_INTEROP_PRODUCT_STEP=try reports their outcome without failing the
# script, =skip leaves them out; the default, require, makes them part of the pass).
set -euo pipefail

umask 077  # backup files hold key material: everything this run writes is private to root
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
absolute() { case $1 in /*) echo "$1" ;; */*) echo "$PWD/$1" ;; *) command -v "$1" || echo "$1" ;; esac; }
AZ=$(absolute "${AZ:-$ROOT/.venv-az/bin/az}")
PYTHON=$(absolute "${PYTHON:-$ROOT/.venv/bin/python}")
KVMIGRATE=$(absolute "${KVMIGRATE:-$ROOT/.venv/bin/kvmigrate}")
PRODUCT_STEP=${KVMIGRATE_INTEROP_PRODUCT_STEP:-require}
SUBSCRIPTION=00000000-0000-0000-0000-00000000a001
HOSTS=/etc/hosts
MARK="# kvmigrate-interop"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kvmigrate-interop.XXXXXX")
chmod 700 "$WORK"
EMULATOR_PID=""

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'az-cli-workflow: FAILED: %s\n' "$*" >&2; exit 1; }

remove_hosts_lines() {  # remove_hosts_lines PID: the marked lines of that run
    # Only those lines go; whatever else changed /etc/hosts meanwhile stays. `cat >` keeps the inode (a bind mount
    # in containers cannot be replaced by a rename).
    if grep -qF "$MARK pid $1 " "$HOSTS" 2>/dev/null; then
        grep -vF "$MARK pid $1 " "$HOSTS" >"$WORK/hosts.clean" || true
        cat "$WORK/hosts.clean" >"$HOSTS"
    fi
}

cleanup() {
    status=$?
    trap - EXIT INT TERM
    if [ -n "$EMULATOR_PID" ] && kill -0 "$EMULATOR_PID" 2>/dev/null; then
        kill -TERM "$EMULATOR_PID" 2>/dev/null || true
        wait "$EMULATOR_PID" 2>/dev/null || true
    fi
    remove_hosts_lines $$
    if [ -f "$WORK/hosts.before" ] && ! cmp -s "$WORK/hosts.before" "$HOSTS"; then
        echo "az-cli-workflow: note: /etc/hosts differs from the copy taken at start (changed by someone else?);" \
            "the copy is kept at $WORK/hosts.before" >&2
        exit "$status"
    fi
    if [ "$status" -ne 0 ]; then
        echo "az-cli-workflow: logs kept in $WORK (emulator.log, az/)" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# -- preflight --------------------------------------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || fail "run as root: the vaults listen on port 443 and /etc/hosts gets four lines"
[ -x "$AZ" ] || fail "no az at $AZ; run 'make interop' (it installs azure-cli into .venv-az) or set AZ="
[ -w "$HOSTS" ] || fail "$HOSTS is not writable"
# Marked lines left by a run that was killed (SIGKILL skips the trap) are ours to remove, and its emulator, which
# outlives it holding port 443, ours to stop: the marker names both pids and the run's directory.
earlier=$(grep -o "$MARK pid [0-9]* emulator [0-9]* work [^ ]*" "$HOSTS" | sort -u || true)
while read -r _ _ _ run _ emu _ dir; do
    [ -n "${run:-}" ] || continue
    state=$(ps -o stat= -p "$run" 2>/dev/null || true)
    case $state in "" | Z*) ;; *) fail "another interop run (pid $run) is using /etc/hosts" ;; esac
    if tr '\0' ' ' <"/proc/$emu/cmdline" 2>/dev/null | grep -qF "$dir/vaults.toml"; then
        echo "stopping the emulator (pid $emu) of an earlier, killed run"
        kill -TERM "$emu" && sleep 1
    fi
    echo "removing the /etc/hosts lines of an earlier, killed run (pid $run)"
    remove_hosts_lines "$run"
done <<<"$earlier"
for name in kvsrc.vault.azure.net kvdst.vault.azure.net kvmig.vault.azure.net management.azure.com; do
    if grep -qwF "$name" "$HOSTS"; then fail "$HOSTS already maps $name; remove that line first"; fi
done
cp -p "$HOSTS" "$WORK/hosts.before"

# -- the emulator: three vaults on 443 (one subscription and geography, so backups restore) and ARM ------------------
cat >"$WORK/vaults.toml" <<TOML
[defaults]
port = 443
subscription = "$SUBSCRIPTION"
geography = "local"
consistency_delay = 0.5
issuance_delay = 1.0

[vaults.kvsrc]
host = "127.0.0.2"
dns_name = "kvsrc.vault.azure.net"

[vaults.kvdst]
host = "127.0.0.3"
dns_name = "kvdst.vault.azure.net"

[vaults.kvmig]
host = "127.0.0.4"
dns_name = "kvmig.vault.azure.net"

[arm]
host = "127.0.0.5"
port = 443
dns_name = "management.azure.com"
TOML
say "starting the emulator"
"$PYTHON" -m kvmigrate emulator --config "$WORK/vaults.toml" --env-file "$WORK/emulator.env" \
    --state-dir "$WORK/state" >"$WORK/emulator.log" 2>&1 &
EMULATOR_PID=$!
for _ in $(seq 1 300); do
    [ -s "$WORK/emulator.env" ] && break
    kill -0 "$EMULATOR_PID" 2>/dev/null || break
    sleep 0.1
done
[ -s "$WORK/emulator.env" ] || { cat "$WORK/emulator.log" >&2; fail "the emulator did not start"; }
set -a
# shellcheck disable=SC1091
. "$WORK/emulator.env"
set +a
grep "^# /etc/hosts needs: " "$WORK/emulator.log" \
    | sed "s|^# /etc/hosts needs: ||; s|\$| $MARK pid $$ emulator $EMULATOR_PID work $WORK|" >"$WORK/hosts.add"
[ "$(wc -l <"$WORK/hosts.add")" -eq 4 ] || fail "expected four hosts lines from the emulator"
cat "$WORK/hosts.add" >>"$HOSTS"
cat "$WORK/hosts.add"

# az: its own profile directory, the emulator's CA, no telemetry or prompts; App Service identity from the env file.
export AZURE_CONFIG_DIR="$WORK/az"
export REQUESTS_CA_BUNDLE="$KVMIGRATE_CA_BUNDLE"
export AZURE_CORE_COLLECT_TELEMETRY=no AZURE_CORE_SURVEY_MESSAGE=no AZURE_CORE_NO_COLOR=true AZURE_CORE_ONLY_SHOW_ERRORS=true
az() { "$AZ" "$@"; }

say "az login --identity"
logged_in=$(az login --identity --query "[0].id" -o tsv)
[ "$logged_in" = "$SUBSCRIPTION" ] || fail "az login --identity chose subscription '$logged_in'"
az account show --query "{subscription:id, tenant:tenantId, user:user.name}" -o tsv

say "seeding kvsrc with az"
az keyvault secret set --vault-name kvsrc --name app-secret --value first-value -o none
az keyvault secret set --vault-name kvsrc --name app-secret --value second-value -o none
az keyvault key create --vault-name kvsrc --name app-key --kty RSA --size 2048 -o none
az keyvault certificate get-default-policy >"$WORK/policy.json"
az keyvault certificate create --vault-name kvsrc --name app-cert --policy "@$WORK/policy.json" -o none
source_thumbprint=$(az keyvault certificate show --vault-name kvsrc --name app-cert --query x509ThumbprintHex -o tsv)
source_key=$(az keyvault key show --vault-name kvsrc --name app-key --query key.n -o tsv)

say "the twelve documented commands: backup from kvsrc, restore into kvdst, show and list there"
BACKUPS="$WORK/az-backups"
mkdir -m 700 "$BACKUPS"
for entry in secret:app-secret key:app-key certificate:app-cert; do
    kind=${entry%%:*}
    name=${entry#*:}
    file="$BACKUPS/$name.$kind"
    echo "-- $kind $name"
    az keyvault "$kind" backup --file "$file" --name "$name" --vault-name kvsrc --subscription "$SUBSCRIPTION" -o none
    [ -s "$file" ] || fail "az wrote no backup for $kind $name"
    az keyvault "$kind" restore --file "$file" --vault-name kvdst -o none
    case $kind in
        secret) shown=$(az keyvault secret show --name "$name" --vault-name kvdst --query value -o tsv)
                expected=second-value ;;
        key) shown=$(az keyvault key show --name "$name" --vault-name kvdst --query key.n -o tsv)
             expected=$source_key ;;
        certificate) shown=$(az keyvault certificate show --name "$name" --vault-name kvdst --query x509ThumbprintHex -o tsv)
                     expected=$source_thumbprint ;;
    esac
    [ "$shown" = "$expected" ] || fail "kvdst shows a different $kind $name"
    listed=$(az keyvault "$kind" list --vault-name kvdst --query "[].name" -o tsv)
    grep -qx "$name" <<<"$listed" || fail "az keyvault $kind list on kvdst does not list $name"
    echo "   backup, restore, show and list: OK"
done
versions=$(az keyvault secret list-versions --vault-name kvdst --name app-secret --query "length(@)" -o tsv)
[ "$versions" = 2 ] || fail "kvdst has $versions versions of app-secret, expected 2 (a backup carries all)"
ls -l "$BACKUPS"

# -- kvmigrate on az's folder of backup files -------------------------------------------------------------------------
say "kvmigrate restore $BACKUPS kvmig, then kvmigrate verify kvsrc kvmig   [product step: $PRODUCT_STEP]"
product_status=skipped
if [ "$PRODUCT_STEP" != skip ]; then
    # The journal and locks go to $WORK/state, removed with the rest of $WORK.
    if (export KVMIGRATE_STATE_DIR="$WORK/state" && "$KVMIGRATE" restore "$BACKUPS" kvmig --ca-bundle "$KVMIGRATE_CA_BUNDLE" \
        && "$KVMIGRATE" verify kvsrc kvmig --ca-bundle "$KVMIGRATE_CA_BUNDLE"); then
        product_status=passed
    else
        product_status="failed (exit $?)"
        [ "$PRODUCT_STEP" = require ] && fail "the kvmigrate step failed"
    fi
fi

say "az-cli-workflow: OK (az login --identity, seed, 12 az commands); kvmigrate step: $product_status"
