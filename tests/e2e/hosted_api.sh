#!/usr/bin/env bash
# End-to-end proof the way a hosted cluster's users see a restore: the control plane's kube-apiserver is the
# REAL one (tests/cluster/hcp.sh up with HCP_API=real: the binary the test cluster runs, storing its objects in
# the hosted etcd over TLS), the data are Kubernetes objects written through it, and a client that held an
# informer (list + watch) from before the restore must relist and converge to the restored state.
#
#   tests/e2e/hosted_api.sh      uses $KUBECONFIG, or the local cluster (tests/cluster/cluster.sh kubeconfig)
#
# 1. a SingleReplica control plane with the real kube-apiserver; set A (ConfigMaps, Secrets, a Deployment) written
#    through the hosted API; its objects recorded (state A)
# 2. playbooks/backup.yml; a restore drill of that backup decodes the API's own objects from the snapshot
# 3. set B written, part of A deleted and changed (state B); an informer synced to it, then cut off (stopped);
#    playbooks/restore.yml of the backup with the revision bump turned off (-e restore_bump_revision=0; the
#    role's own verify runs too): the hosted API serves exactly state A; other writes take the server past the
#    informer's resourceVersion; the informer resumes its watch from its old resourceVersion, never relists and
#    keeps state B, which the server no longer has
# 4. the same with the bump (the default, set C): the informer's resourceVersion is older than the restore's
#    bumped and compacted revision: it gets 410 Gone, relists and converges to state A
# Removes the control plane on exit (HOSTED_API_KEEP=1 keeps it); exits non-zero on any failure.
set -euo pipefail
start=$SECONDS
. "$(dirname "$0")/script-env.sh"

name=e2e-hostedapi
ns=clusters-$name
out=${HCP_ETCD_E2E_DIR:-$repo/tests/output/e2e}
mkdir -p "$out"
work=$(mktemp -d "$out/hosted-api.XXXXXX")
tool=(python3 "$repo/tests/tools/hosted_api.py")
log() { printf '%s [hosted-api] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { log "FAIL: $*"; exit 1; }
watch_pid=

cleanup() {
  local rc=$?
  [ -z "$watch_pid" ] || kill "$watch_pid" 2>/dev/null || true
  if [ "${HOSTED_API_KEEP:-0}" = 1 ]; then
    log "HOSTED_API_KEEP=1: kept $name and $work"
  else
    tests/cluster/hcp.sh down "$name" >"$work/down.log" 2>&1 || log "warning: hcp.sh down $name failed (see $work/down.log)"
    rm -rf "$work"
  fi
  if [ $rc -eq 0 ]; then log "PASSED in $((SECONDS - start)) s"; else log "FAILED (rc $rc) after $((SECONDS - start)) s"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. the control plane with the real kube-apiserver, and set A written through it
log "bringing up $name (SingleReplica, etcd 3.5, the real kube-apiserver)"
HCP_API=real tests/cluster/hcp.sh up "$name" SingleReplica 3.5 >"$work/up.log" 2>&1 || { tail -n 30 "$work/up.log"; fail "hcp.sh up $name"; }
HOSTED_API_SERVER=https://$("$KUBECTL" -n "$ns" get service kube-apiserver -o jsonpath='{.spec.clusterIP}'):6443
HOSTED_API_TOKEN=$("$KUBECTL" -n "$ns" get secret kube-apiserver-token -o jsonpath='{.data.token}' | base64 -d)
export HOSTED_API_SERVER HOSTED_API_TOKEN
"${tool[@]}" seed A 60 || fail "seed A through the hosted API"
"${tool[@]}" state "$work/a.json" >/dev/null || fail "state A"
log "set A written through the hosted API at $HOSTED_API_SERVER: $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$work/a.json") objects in hcp-e2e"

# 2. the backup, and a drill of it that decodes the API server's own objects
ansible-playbook playbooks/backup.yml -e cluster_name="$name" -e "backup_dir=$work/backups" >"$work/backup.log" 2>&1 \
  || { tail -n 30 "$work/backup.log"; fail "backup"; }
snap=$(find "$work/backups" -name etcd-snapshot.db | head -1)
[ -n "$snap" ] || fail "no snapshot after the backup"
log "backup: $snap"
ansible-playbook playbooks/drill.yml -e cluster_name="$name" -e "backup_dir=$work/backups" >"$work/drill.log" 2>&1 \
  || { tail -n 30 "$work/drill.log"; fail "drill"; }
line=$(grep -o 'drill of /[^"]*' "$work/drill.log" | tail -1)
decoded=$(sed -nE 's/.* ([0-9]+) Kubernetes objects decoded.*/\1/p' <<<"$line")
[ "${decoded:-0}" -gt 0 ] && [[ $line == *", 0 undecodable: OK" ]] || fail "the drill decoded no Kubernetes object of the real API: $line"
log "drill: $line"

# informer_across_restore SET BUMP EXPECT: set SET written, part of A deleted and changed, an informer synced to
# that; the informer's process is stopped (a client cut off while the restore runs), the backup restored with
# revision bump BUMP (restore_bump_revision; 0: off), the hosted API must serve exactly state A; then the server's
# resourceVersion is taken past the informer's last one by other writes (what a busy cluster does meanwhile) and
# the informer resumes. EXPECT converge: it must get 410 Gone, relist and converge to state A. EXPECT stale: it
# must NOT (its watch resumes from its old resourceVersion and it keeps serving what the server no longer has).
informer_across_restore() {
  local set=$1 bump=$2 expect=$3 t0 rc
  "${tool[@]}" mutate "$set" 30 >/dev/null || fail "set $set through the hosted API"
  "${tool[@]}" state "$work/$set.json" >/dev/null || fail "state $set"
  if "${tool[@]}" same "$work/a.json" "$work/$set.json" >/dev/null; then fail "set $set changed nothing"; fi
  "${tool[@]}" watch "$work/watch-$set.json" >"$work/watch-$set.log" 2>&1 &
  watch_pid=$!
  "${tool[@]}" converged "$work/watch-$set.json" "$work/$set.json" 30 >"$work/synced.log" || { cat "$work/synced.log"; fail "the informer did not sync to state $set"; }
  kill -STOP "$watch_pid"
  log "state $set ($(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$work/$set.json") objects), informer synced, then cut off; restore with restore_bump_revision=$bump"
  t0=$SECONDS
  set +e
  ansible-playbook playbooks/restore.yml -e cluster_name="$name" -e "snapshot=$snap" -e confirm=true -e force=true \
    -e restore_bump_revision="$bump" -e "restore_work_dir=$work/restore-$set" >"$work/restore-$set.log" 2>&1
  rc=$?
  set -e
  cp "$work/restore-$set.log" "$out/hosted-api-restore-$set.log"
  grep -hoE '(verify etcd-[0-9]+: [^"]*|VERDICT: [^"]*)' "$work/restore-$set.log" | awk '!seen[$0]++' || true
  [ $rc -eq 0 ] || { tail -n 40 "$work/restore-$set.log"; fail "restore rc=$rc"; }
  "${tool[@]}" state "$work/after-$set.json" >/dev/null || fail "state after the restore"
  "${tool[@]}" same "$work/a.json" "$work/after-$set.json" >"$work/same.log" || { cat "$work/same.log"; fail "the hosted API does not serve state A after the restore"; }
  log "restore in $((SECONDS - t0)) s; the hosted API serves $(cat "$work/same.log") of state A (set $set gone, A's deleted and changed objects back)"
  log "$("${tool[@]}" advance "$work/watch-$set.json")"
  kill -CONT "$watch_pid"
  if [ "$expect" = converge ]; then
    "${tool[@]}" converged "$work/watch-$set.json" "$work/a.json" 90 >"$work/converged.log" || { cat "$work/converged.log"; fail "the informer did not converge to state A"; }
    python3 -c 'import json, sys; m = json.load(open(sys.argv[1]))["meta"]; assert m["relists"] >= 1, m' "$work/watch-$set.json" \
      || fail "the informer converged without relisting"
    log "with the bump: $(cat "$work/converged.log")"
  else
    if "${tool[@]}" converged "$work/watch-$set.json" "$work/a.json" 20 >"$work/converged.log"; then
      fail "without the bump the informer converged too, the contrast is not shown: $(cat "$work/converged.log")"
    fi
    stale=$(python3 - "$work/watch-$set.json" "$work/$set.json" <<'PY'
import json, sys
seen, before = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
want = dict((k, v) for k, v in before.items() if k.startswith("ConfigMap/"))
assert seen["view"] == want and seen["meta"]["relists"] == 0, (len(seen["view"]), len(want), seen["meta"])
print("%d ConfigMaps of the state before the restore, 0 relists, %d events since" % (len(want), seen["meta"]["events"]))
PY
    ) || fail "without the bump the informer's view is neither state A nor state $set"
    log "without the bump: 20 s later the informer still holds $stale: objects the server no longer has"
  fi
  kill "$watch_pid" 2>/dev/null || true
  wait "$watch_pid" 2>/dev/null || true
  watch_pid=
}

# 3. the bump turned off: a client cut off during the restore keeps a view the server no longer has (first: once a
# restore has bumped the revision by 10^9, no number of writes takes it past a client's resourceVersion again)
informer_across_restore B 0 stale
# 4. with the revision bump (the default): the same client relists and converges
informer_across_restore C 1000000000 converge
