#!/usr/bin/env bash
# Fault injection on a real cluster (issue 5 part 2): a restore killed like a crashed operator machine
# at every step boundary and then rerun, a helper pod deleted under the member restores, and an etcd
# pod killed during a backup. Every case is judged by the outcome (data on every member, API replica
# counts, HostedCluster, leftovers), never by task status.
#
#   tests/e2e/faults.sh                        every case, every kill point (make e2e-faults)
#   FAULT_POINTS="2 7 11" tests/e2e/faults.sh  only these kill points; "7+3" kills 3 s after the header,
#                                              "7+async" while the members are restored: once a member
#                                              restore (async job) runs, or, when staged members are swapped
#                                              one after the other, once the first is swapped
#   FAULT_CASES="points helper backup walk"    which cases run (default: all four; helper = helper-copy
#                                              and helper-swap, which can also be named alone)
#   FAULT_WALK="swap:mv -T:1:kill,..."         walk only these execs (default: every exec of etcd-1's swap
#                                              and of its rollback, each with every action, found by a
#                                              traced run): <swap|rollback>:<regex>:<n>:<action>
#   FAULT_WALK_ACTIONS="kill fail"             the actions of the full walk, in this order (default: kill-after
#                                              lose-exit fail kill: every exec with one action before the next)
#   FAULT_KEEP=1                               keep control plane fault-ha at the end (default: remove it)
#   FAULT_NAME=fault-ha                        the control plane's name
#
# Kill point k = right after the k-th "TASK [hcp.etcd.restore : Step..." header of a restore run
# (K = every such header of a full run, counted from the role). The kill is SIGKILL to ansible-playbook,
# its workers (they setsid() and outlive their parent) and the detached async processes of that run
# (etcd_restore_member runs with poll 0), found by the run's own ANSIBLE_REMOTE_TMP: nothing else is touched.
# Logs: tests/output/faults/ (FAULT_DIR). Uses $KUBECONFIG, else the local cluster.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
. tests/cluster/versions.env

if [ -z "${KUBECONFIG:-}" ]; then KUBECONFIG=$(tests/cluster/cluster.sh kubeconfig); fi
export KUBECONFIG K8S_AUTH_KUBECONFIG=$KUBECONFIG
KUBECTL=${KUBECTL:-$HOME/.cache/hcp-etcd/kubernetes-$KUBERNETES_VERSION/bin/kubectl}
export KUBECTL
export ANSIBLE_COLLECTIONS_PATH=$repo/.collections ANSIBLE_CONFIG=$repo/ansible.cfg PATH=$repo/.venv/bin:$PATH
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 NO_COLOR=1 PYTHONUNBUFFERED=1

NAME=${FAULT_NAME:-fault-ha}   # the control plane of every case (another name lets two runs share the cluster)
HC_NS=clusters
NS=$HC_NS-$NAME
OUT=${FAULT_DIR:-$repo/tests/output/faults}
ATMP=$OUT/ansible-tmp              # ANSIBLE_REMOTE_TMP of every run here: finds this test's async leftovers
ASYNC=$OUT/restore/async           # the restore's job status files (restore_async_dir under restore_work_dir)
CASES=${FAULT_CASES:-points helper backup walk}
HDR='^TASK \[hcp\.etcd\.restore : Steps? [0-9]'
DATA=$repo/tests/tools/etcd-data
EXPECTED_API=(kube-apiserver=3 openshift-apiserver=2 openshift-oauth-apiserver=3)
# K: the "Step" task headers of a full, uninterrupted run (recover.yml only runs after a failure).
K=$(grep -hE '^\s*- name: Steps? [0-9]' $(ls roles/restore/tasks/*.yml | grep -v '/recover.yml$') | wc -l)
POINTS=${FAULT_POINTS:-$(seq -s ' ' 1 "$K")}

k() { "$KUBECTL" "$@"; }
log() { printf '%s [faults] %s\n' "$(date +%H:%M:%S)" "$*"; }
results=()
tried=0 passed=0 status=0
t_all=$SECONDS
current_pid=""

# ---- processes -----------------------------------------------------------------------------------
# Kill a run like a crash of the operator's machine. ansible-core's workers setsid() (they are not in
# the playbook's process group or session) and go on launching async jobs after their parent died, and
# async_wrapper daemonizes (setsid) too. So: freeze the playbook and every descendant (SIGSTOP, until no
# new one appears), SIGKILL them all, then for a few seconds SIGKILL every process in the session of
# anything that runs from this test's ANSIBLE_REMOTE_TMP (a launch that was in flight, the module and
# its children).
descendants() {  # PID...: the PIDs and all their descendants
  ps -eo pid=,ppid= | awk -v roots="$*" 'BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1 }
    { parent[$1] = $2 } END { do { added = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; added = 1 } } while (added)
      for (p in keep) print p }'
}
kill_run() {
  local pid=$1 mysid pids prev="" i sid p
  mysid=$(ps -o sid= -p $$ | tr -d ' ')
  kill -STOP "$pid" 2>/dev/null
  pids=$(descendants "$pid" | sort -n | tr '\n' ' ')
  while [ "$pids" != "$prev" ]; do
    prev=$pids
    # shellcheck disable=SC2086
    kill -STOP $pids 2>/dev/null
    pids=$(descendants $pids | sort -n | tr '\n' ' ')
  done
  # shellcheck disable=SC2086
  kill -9 $pids 2>/dev/null
  for ((i = 0; i < 8; i++)); do
    for p in $(pgrep -f -- "$ATMP/"); do
      sid=$(ps -o sid= -p "$p" | tr -d ' ')
      kill -9 "$p" 2>/dev/null
      [ -n "$sid" ] && [ "$sid" != "$mysid" ] && [ "$sid" -gt 1 ] && pkill -9 -s "$sid"
    done
    sleep 0.5
  done
  wait "$pid" 2>/dev/null
  if pgrep -f -- "$ATMP/" >/dev/null; then log "WARNING: async leftovers still alive: $(pgrep -af -- "$ATMP/" | head -3)"; fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$current_pid" ] && kill_run "$current_pid"
  if [ "${FAULT_KEEP:-0}" != 1 ]; then tests/cluster/hcp.sh down "$NAME" >/dev/null 2>&1 || log "WARNING: hcp.sh down $NAME failed"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# play LOG PLAYBOOK ARGS...: start ansible-playbook in its own session (setsid), output to LOG; sets current_pid.
play_bg() {
  local logf=$1; shift
  ANSIBLE_REMOTE_TMP=$ATMP setsid ansible-playbook "$@" >"$logf" 2>&1 </dev/null &
  current_pid=$!
}
play_wait() { local rc; wait "$current_pid"; rc=$?; current_pid=""; return $rc; }

restore_args() { echo playbooks/restore.yml -e cluster_name=$NAME -e "snapshot=$SNAP" -e confirm=true -e "restore_work_dir=$OUT/restore"; }

# wait_header LOG REGEX N TIMEOUT: until the N-th line matching REGEX is in LOG (0), or the run ended / timed out (1).
wait_header() {
  local logf=$1 re=$2 n=$3 t0=$SECONDS got
  while :; do
    got=$(grep -cE "$re" "$logf" 2>/dev/null)
    [ "${got:-0}" -ge "$n" ] && return 0
    [ -d "/proc/$current_pid" ] || return 1
    [ $((SECONDS - t0)) -lt "$4" ] || return 1
    sleep 0.1
  done
}

# member_result_after LOG N: after the N-th Step header, a member's result line of a loop has been printed.
member_result_after() {
  awk -v re="$HDR" -v n="$2" '$0 ~ re { h++ } h >= n && /^(changed|ok): \[localhost\] => \(item=etcd-/ { found = 1; exit } END { exit !found }' "$1" 2>/dev/null
}

# ---- cluster state -------------------------------------------------------------------------------
phase() { local p; p=$(k -n "$NS" get configmap hcp-etcd-restore -o jsonpath='{.data.phase}' 2>/dev/null); echo "${p:-none}"; }
state() {  # one line: run-record phase, etcd and API spec replicas, paused
  printf 'phase=%s etcd=%s api=%s paused=%s' "$(phase)" \
    "$(k -n "$NS" get statefulset etcd -o jsonpath='{.spec.replicas}' 2>/dev/null)" \
    "$(for d in "${EXPECTED_API[@]}"; do k -n "$NS" get deployment "${d%%=*}" -o jsonpath='{.spec.replicas}' 2>/dev/null; printf ' '; done | sed 's/ $//; s/ /\//g')" \
    "$(k -n "$HC_NS" get hostedcluster "$NAME" -o jsonpath='{.spec.pausedUntil}' 2>/dev/null)"
}

etcd_ready() {  # wait until StatefulSet etcd serves 3/3 ready
  local t0=$SECONDS
  until [ "$(k -n "$NS" get statefulset etcd -o jsonpath='{.status.readyReplicas}' 2>/dev/null)" = 3 ]; do
    [ $((SECONDS - t0)) -lt 600 ] || return 1; sleep 3
  done
}

# The state the restore starts from: data set B written and part of A deleted after the backup, etcd-1's
# data lost (not with "damage soft": a healthy cluster, which a rollback must give back exactly); the
# restored-snapshot annotation of a previous case removed, so the plain command restores.
damage() {
  etcd_ready || { log "etcd not 3/3 ready before the damage"; return 1; }
  "$DATA" seed --namespace "$NS" --set B >/dev/null && "$DATA" delete --namespace "$NS" --set A >/dev/null || return 1
  [ "${1:-}" = soft ] || k -n "$NS" exec etcd-1 -c etcd -- sh -c 'rm -rf /var/lib/data/member && kill 1' >/dev/null 2>&1 || true
  k -n "$HC_NS" annotate hostedcluster "$NAME" hcp.etcd/restored-snapshot-sha256- hcp.etcd/restored-at- >/dev/null
}

# check_outcome LOGPREFIX: the full outcome of a finished restore; prints what is wrong, returns 0 when all holds.
check_outcome() {
  local pre=$1 bad=() d n got t0 ann paused left
  if ! "$DATA" verify --namespace "$NS" --expect A --absent B --members 3 >"$pre.verify" 2>&1; then
    bad+=("data: $(grep -m1 VERDICT "$pre.verify" || tail -n1 "$pre.verify")")
  fi
  for d in "${EXPECTED_API[@]}"; do
    n=${d#*=}; d=${d%%=*}; t0=$SECONDS
    while got=$(k -n "$NS" get deployment "$d" -o jsonpath='{.spec.replicas}/{.status.availableReplicas}/{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null)
          [ "$got" != "$n/$n/True" ] && [ $((SECONDS - t0)) -lt 90 ]; do sleep 3; done
    [ "$got" = "$n/$n/True" ] || bad+=("$d spec/available/Available=$got, expected $n/$n/True")
  done
  paused=$(k -n "$HC_NS" get hostedcluster "$NAME" -o jsonpath='{.spec.pausedUntil}')
  [ -z "$paused" ] || bad+=("spec.pausedUntil=$paused")
  ann=$(k -n "$HC_NS" get hostedcluster "$NAME" -o jsonpath='{.metadata.annotations.hcp\.etcd/restored-snapshot-sha256}')
  [ "$ann" = "$SHA" ] || bad+=("annotation restored-snapshot-sha256='$ann', expected $SHA")
  left=$(k -n "$NS" get pods,configmaps -l app.kubernetes.io/managed-by=hcp.etcd -o name 2>&1 | tr '\n' ' ')
  [ -z "$left" ] || bad+=("left behind: $left")
  [ ${#bad[@]} -eq 0 ] && return 0
  printf '    outcome: %s\n' "${bad[@]}"
  return 1
}

# rerun LOGPREFIX: the same restore command to completion, then the full outcome. Sets rerun_s, rerun_rc.
rerun() {  # PREFIX [EXTRA ARGS...]: the same command again
  local t0=$SECONDS pre=$1; shift
  # shellcheck disable=SC2046
  play_bg "$pre.rerun.log" $(restore_args) "$@"
  play_wait; rerun_rc=$?
  rerun_s=$((SECONDS - t0))
  if [ $rerun_rc -ne 0 ]; then
    echo "    rerun rc=$rerun_rc; last lines of $pre.rerun.log:"; grep -E 'fatal|FAILED|msg' "$pre.rerun.log" | tail -n 5 | cut -c1-400 | sed 's/^/      /'
    check_outcome "$pre" >/dev/null; return 1
  fi
  check_outcome "$pre"
}

record() {  # CASE PASS|FAIL DETAIL
  tried=$((tried + 1))
  if [ "$2" = PASS ]; then passed=$((passed + 1)); else status=1; fi
  results+=("$(printf '%-22s %-4s %s' "$1" "$2" "$3")")
  log "RESULT $1 $2 $3"
}

# ---- (1) set up once -----------------------------------------------------------------------------
setup() {
  local t0=$SECONDS
  rm -rf "$OUT"; mkdir -p "$OUT" "$ATMP"; chmod 700 "$OUT"
  log "setup: control plane $NAME (HighlyAvailable), openshift-apiserver at 2, data set A, one backup"
  tests/cluster/hcp.sh down "$NAME" >"$OUT/setup.log" 2>&1
  tests/cluster/hcp.sh up "$NAME" HighlyAvailable 3.5 >>"$OUT/setup.log" 2>&1 || { tail -n 20 "$OUT/setup.log"; return 1; }
  # the miniature's control-plane operator keeps each API Deployment at this count while not paused
  k -n "$NS" annotate deployment openshift-apiserver hcp-etcd.test/desired-replicas=2 --overwrite >/dev/null
  k -n "$NS" scale deployment openshift-apiserver --replicas=2 >/dev/null
  k -n "$NS" rollout status deployment openshift-apiserver --timeout=300s >>"$OUT/setup.log" 2>&1 || return 1
  "$DATA" seed --namespace "$NS" --set A >>"$OUT/setup.log" 2>&1 || return 1
  play_bg "$OUT/backup.log" playbooks/backup.yml -e cluster_name=$NAME -e "backup_dir=$OUT/backups"
  play_wait || { tail -n 20 "$OUT/backup.log"; return 1; }
  # Every case judges a restore against set A alone: make sure the backup saw nothing else (a stray writer, such
  # as a killed earlier run of this script, would otherwise show up as a restore that brought back the damage).
  "$DATA" verify --namespace "$NS" --expect A --absent B --members 3 >"$OUT/setup.verify" 2>&1 \
    || { log "setup: the data backed up is not set A alone: $(grep -m1 VERDICT "$OUT/setup.verify")"; return 1; }
  SNAP=$(ls -1 "$OUT"/backups/$HC_NS/$NAME/*/etcd-snapshot.db | sort | tail -n1)
  SHA=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha256"])' "$SNAP.json")
  log "setup: done in $((SECONDS - t0)) s; snapshot $SNAP sha256 $SHA; K=$K kill points"
}

# ---- (2) kill the restore at step boundary k, rerun the same command -------------------------------
case_point() {
  local spec=$1 kp=${1%%+*} delay=0 pre=$OUT/point-$1 t0=$SECONDS label at_kill killed_s jobs_at_kill
  [[ $spec == *+* ]] && delay=${spec#*+}
  log "point $spec: damage, restore, kill after Step header #$kp$([ "$delay" = 0 ] || echo " + ${delay}s")"
  damage || { record "point $spec" FAIL "could not prepare the damage"; return; }
  rm -rf "$ASYNC"
  # shellcheck disable=SC2046
  play_bg "$pre.killed.log" $(restore_args)
  if ! wait_header "$pre.killed.log" "$HDR" "$kp" 1200; then
    play_wait; record "point $spec" FAIL "Step header #$kp never appeared (run ended rc=$?, log $pre.killed.log)"
    return
  fi
  if [ "$delay" = async ]; then
    # Wait until an async member restore of this run has started and not finished, or the first of the
    # members swapped one after the other is done, then crash.
    local t1=$SECONDS
    until grep -lq '"finished": false' "$ASYNC"/* 2>/dev/null || member_result_after "$pre.killed.log" "$kp"; do
      [ -d "/proc/$current_pid" ] && [ $((SECONDS - t1)) -lt 900 ] || break
      sleep 0.2
    done
  elif [ "$delay" != 0 ]; then sleep "$delay"; fi
  kill_run "$current_pid"; current_pid=""
  jobs_at_kill=$(grep -l '"finished": false' "$ASYNC"/* 2>/dev/null | wc -l)
  killed_s=$((SECONDS - t0))
  label=$(grep -E "$HDR" "$pre.killed.log" | sed -n "${kp}p" | sed -E 's/^TASK \[hcp\.etcd\.restore : //; s/\] \**$//' | cut -c1-60)
  at_kill="$(state) async-running=$jobs_at_kill"
  log "point $spec: killed at '$label' after ${killed_s}s: $at_kill"
  # The killed run holds the run lock until it expires; kill_run ended every process of it (async jobs
  # included), which is what an operator must know before breaking the lock.
  if rerun "$pre" -e break_lock=true; then
    record "point $spec" PASS "[$label] at kill: $at_kill | killed ${killed_s}s, rerun ${rerun_s}s, total $((SECONDS - t0))s"
  else
    record "point $spec" FAIL "[$label] at kill: $at_kill | rerun rc=$rerun_rc ${rerun_s}s (logs $pre.*)"
  fi
}

# ---- (3) a helper pod deleted under the copy (Step 1b, staging) or the swap (Steps 6 and 7) ------------
# helper-copy: the snapshot is being copied in before the outage; etcd was never stopped, so the run must
#   fail cleanly with the control plane as it was. helper-swap: etcd is stopped and the members are being
#   swapped; the run must fail cleanly and roll back (previous data on every member, API back, unpaused).
#   Either way the same command, rerun, must then finish with the full outcome.
case_helper() {
  local kind=$1 pre=$OUT/$1 t0=$SECONDS rc pod when at_end msg header back
  local delay later
  case $kind in
    # the copy starts with the staging restore task (its helpers are Ready by then)
    helper-copy) header='Restore each member from the snapshot .staging only.' later='Step 2' delay=${FAULT_HELPER_DELAY:-1} ;;
    *) header='Steps 6 and 7' later='Step 8' delay=${FAULT_HELPER_DELAY:-0} ;;
  esac
  log "$kind: damage, restore, delete a helper pod once '$header' starts"
  damage soft || { record "$kind" FAIL "could not prepare the damage"; return; }
  # shellcheck disable=SC2046
  play_bg "$pre.run.log" $(restore_args)
  if ! wait_header "$pre.run.log" "$header" 1 1200; then
    play_wait; record "$kind" FAIL "'$header' never started (rc=$?, log $pre.run.log)"; return
  fi
  sleep "$delay"
  pod=$(k -n "$NS" get pods -l hcp.etcd/role=restore-helper -o name | sort | head -n1)
  if [ -z "$pod" ]; then  # nothing to delete: the case would prove nothing
    play_wait; record "$kind" FAIL "no helper pod to delete ${delay}s after '$header' (log $pre.run.log)"; return
  fi
  if grep -q "$later" "$pre.run.log"; then when="after '$header' (too late)"; else when="during '$header'"; fi
  k -n "$NS" delete "$pod" --wait=false >/dev/null
  log "$kind: deleted $pod $when"
  play_wait; rc=$?
  at_end=$(state)
  if [ $rc -eq 0 ]; then
    # It reports success: then it must have finished with the full, right outcome.
    if check_outcome "$pre.first"; then
      record "$kind" PASS "deleted $pod $when; run retried and finished rc=0 with the full outcome ($((SECONDS - t0))s)"
    else
      record "$kind" FAIL "deleted $pod $when; run finished rc=0 WITHOUT the right outcome ($at_end)"
    fi
    return
  fi
  msg=$(grep -oE '(RESTORE FAILED[^"]*|The data is restored[^"]*)' "$pre.run.log" | tail -n1 | cut -c1-160)
  if [ -z "$msg" ] || [ "$(k -n "$HC_NS" get hostedcluster "$NAME" -o jsonpath='{.metadata.annotations.hcp\.etcd/restored-snapshot-sha256}')" = "$SHA" ]; then
    record "$kind" FAIL "deleted $pod $when; rc=$rc but no clean failure (message: '${msg:-none}', $at_end)"; return
  fi
  # Failed before the data changed, or rolled back: the control plane must be back as it was, on the
  # data it had (B on every member, hashkv equal), with nothing left of the run.
  back=""
  if [[ $msg == *"ROLLED BACK"* || $msg == *"BEFORE ANY ETCD DATA CHANGED"* ]]; then
    etcd_ready || back="etcd not 3/3 ready"
    for d in "${EXPECTED_API[@]}"; do
      [ "$(k -n "$NS" get deployment "${d%%=*}" -o jsonpath='{.spec.replicas}/{.status.availableReplicas}')" = "${d#*=}/${d#*=}" ] || back+=" ${d%%=*} not back at ${d#*=}"
    done
    [ -z "$(k -n "$HC_NS" get hostedcluster "$NAME" -o jsonpath='{.spec.pausedUntil}')" ] || back+=" still paused"
    "$DATA" verify --namespace "$NS" --expect B --members 3 >"$pre.back.verify" 2>&1 || back+=" data: $(grep -m1 VERDICT "$pre.back.verify")"
    [ -z "$(k -n "$NS" get pods,configmaps -l app.kubernetes.io/managed-by=hcp.etcd -o name)" ] || back+=" leftovers"
    [ -z "$back" ] || { record "$kind" FAIL "deleted $pod $when; '$msg' but the control plane is not back:$back"; return; }
    back=" control plane back on the previous data (B on 3 members),"
  elif [ "$kind" = helper-swap ]; then
    record "$kind" FAIL "deleted $pod $when; failed without rolling back: '$msg' ($at_end)"; return
  fi
  log "$kind: failed cleanly rc=$rc after $((SECONDS - t0))s: $at_end; '$msg...'"
  if rerun "$pre"; then
    record "$kind" PASS "deleted $pod $when; clean failure rc=$rc ($at_end),$back rerun ${rerun_s}s full outcome, total $((SECONDS - t0))s"
  else
    record "$kind" FAIL "deleted $pod $when; clean failure rc=$rc, but rerun rc=$rerun_rc (logs $pre.*)"
  fi
}

# ---- (4) etcd-0 (the member a backup reads from) killed during a backup ----------------------------
snapshot_ok() {  # FILE: sidecar sha256 = file's, trailer intact, same cluster (hcp.etcd.etcd_snapshot_info)
  local f=$1 sum side
  sum=$(sha256sum "$f" | cut -d' ' -f1)
  side=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha256"])' "$f.json" 2>/dev/null)
  [ "$sum" = "$side" ] || { echo "sha256 $sum != sidecar '$side'"; return 1; }
  ANSIBLE_REMOTE_TMP=$ATMP ansible localhost -c local -o -m hcp.etcd.etcd_snapshot_info \
    -a "path=$f cluster_name=$NAME hosted_cluster_namespace=$HC_NS" >"$f.check" 2>&1 || { tail -n1 "$f.check" | cut -c1-200; return 1; }
}
revision_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("revision") or 0)' "$1.json"; }

case_backup() {
  local pre=$OUT/backup-fault t0=$SECONDS rc f why="" rev fresh frev done_what leak
  log "backup: back up, force-delete etcd-0 during 'Save a snapshot'"
  etcd_ready || { record backup FAIL "etcd not 3/3 ready before the backup"; return; }
  play_bg "$pre.log" playbooks/backup.yml -e cluster_name=$NAME -e "backup_dir=$pre"
  if ! wait_header "$pre.log" '^TASK \[hcp\.etcd\.backup : Save a snapshot' 1 900; then
    play_wait; record backup FAIL "the backup never reached 'Save a snapshot' (rc=$?, log $pre.log)"; return
  fi
  # Strike while etcd-0 (the first ready member, which the backup reads) holds the snapshot being saved.
  local hit="before the snapshot was written on etcd-0" t1=$SECONDS
  while [ -d "/proc/$current_pid" ] && [ $((SECONDS - t1)) -lt 300 ]; do
    if [ -n "$(k -n "$NS" exec etcd-0 -c etcd -- sh -c 'ls /var/lib/hcp-etcd-snapshot-*.db* 2>/dev/null' 2>/dev/null)" ]; then
      hit="while etcd-0 held the snapshot being saved"; break
    fi
    sleep 0.3
  done
  [ -d "/proc/$current_pid" ] || hit="too late (the backup had ended)"
  k -n "$NS" delete pod etcd-0 --grace-period=0 --force >/dev/null 2>&1
  log "backup: force-deleted etcd-0 $hit"
  play_wait; rc=$?
  f=$(ls -1 "$pre"/$HC_NS/$NAME/*/etcd-snapshot.db 2>/dev/null | sort | tail -n1)
  etcd_ready || { record backup FAIL "etcd did not come back 3/3 after the fault"; return; }
  leak=$(k -n "$NS" exec etcd-0 -c etcd -- sh -c 'ls -s /var/lib/hcp-etcd-snapshot-* 2>/dev/null' 2>/dev/null | tr '\n' ' ')
  [ -z "$leak" ] || log "backup: NOTE temporary snapshot left on etcd-0's volume: $leak"
  if [ $rc -eq 0 ]; then
    # Success is only acceptable with a valid snapshot (then compared with a fresh backup below).
    [ -n "$f" ] || { record backup FAIL "rc=0 but no snapshot file"; return; }
    why=$(snapshot_ok "$f") || { record backup FAIL "rc=0 with an INVALID snapshot: $why"; return; }
    rev=$(revision_of "$f"); done_what="reported success; snapshot valid (sha256 = sidecar, trailer, revision $rev)"
  else
    # A failure must be clean: said why, and no snapshot that claims to be good but is not.
    why=$(grep -m1 -oE '"msg": "[^"]{0,200}' "$pre.log" | cut -c9-)
    for f in $(ls -1 "$pre"/$HC_NS/$NAME/*/etcd-snapshot.db 2>/dev/null); do
      if [ -f "$f.json" ] && ! snapshot_ok "$f" >/dev/null; then record backup FAIL "rc=$rc left an invalid snapshot WITH a sidecar: $f"; return; fi
    done
    [ -n "$why" ] || { record backup FAIL "rc=$rc without a message (log $pre.log)"; return; }
    rev=0; done_what="failed cleanly rc=$rc: ${why:0:160}"
  fi
  # A fresh backup (the retry) must succeed, be valid and not older than the one taken under the fault.
  play_bg "$pre.retry.log" playbooks/backup.yml -e cluster_name=$NAME -e "backup_dir=$pre.retry"
  play_wait || { record backup FAIL "$done_what; the retry backup failed (log $pre.retry.log)"; return; }
  fresh=$(ls -1 "$pre.retry"/$HC_NS/$NAME/*/etcd-snapshot.db | sort | tail -n1)
  why=$(snapshot_ok "$fresh") || { record backup FAIL "$done_what; retry snapshot invalid: $why"; return; }
  frev=$(revision_of "$fresh")
  [ "$frev" -ge "$rev" ] || { record backup FAIL "$done_what; fresh revision $frev < $rev"; return; }
  "$DATA" verify --namespace "$NS" --expect A --absent B --members 3 >"$pre.verify" 2>&1 \
    || { record backup FAIL "$done_what; data after the fault: $(grep -m1 VERDICT "$pre.verify")"; return; }
  record backup PASS "etcd-0 deleted $hit; $done_what;${leak:+ temp file left on etcd-0: $leak;} retry backup valid (revision $frev), data A intact on 3 members, $((SECONDS - t0))s"
}

# ---- (5) the exec walk: a fault at one exec of a member swap or of a rollback ------------------------
# The transport's fault hook (HCP_ETCD_FAULT, see plugins/module_utils/pod_transport.py) kills the module
# before or after the n-th matching exec, fails it, or loses its exit status. "swap" strikes the swap of
# etcd-1 (the staged swaps run etcd-0, etcd-1, etcd-2: one member is swapped, one half, one not yet);
# "rollback" fails etcd-2's first rename so that the run rolls back, and strikes etcd-1's rollback.
# Then, on every member: the old data (its digest from before the run) after a rollback, or, when the
# run could not roll back, the same command rerun to the verified restored data (set A); no journal,
# no snapshot copy, no temporary file, and no previous data directory that the data directory's marker
# does not name (old data orphaned). The run's own report must say which.
WALK_POD=hcp-etcd-restore-etcd-1
walk_prefix() { case $1 in swap) echo "^restored $WALK_POD: .*" ;; rollback) echo "^rolled_back $WALK_POD: .*" ;; esac; }
walk_trigger() { [ "$1" = rollback ] && echo "^restored hcp-etcd-restore-etcd-2: mv -T:1:fail;" || true; }

digests() { "$DATA" digest --namespace "$NS" --members 3 2>&1 | sed -E 's/ \(revision.*//'; }
volumes() {  # one line per member: the entries of /var/lib, then the marker's previous_data_dir
  local m
  for m in etcd-0 etcd-1 etcd-2; do
    printf '%s %s | %s\n' "$m" "$(k -n "$NS" exec "$m" -c etcd -- ls -A /var/lib 2>&1 | tr '\n' ' ')" \
      "$(k -n "$NS" exec "$m" -c etcd -- cat /var/lib/data/.hcp-etcd-restore.json 2>/dev/null \
         | python3 -c 'import json,sys; print(json.load(sys.stdin).get("previous_data_dir") or "")' 2>/dev/null)"
  done
}
# orphans BEFORE AFTER: what is left on a volume that nothing names (prints it; 0 when clean).
orphans() {
  python3 - "$1" "$2" <<'PY'
import sys
def parse(path):
    out = {}
    for line in open(path):
        name, rest = line.split(" ", 1)
        entries, _, previous = rest.partition(" | ")
        out[name] = (set(entries.split()), previous.strip())
    return out
before, after = parse(sys.argv[1]), parse(sys.argv[2])
bad = []
for member, (entries, previous) in sorted(after.items()):
    new = entries - before.get(member, (set(), ""))[0]
    for entry in sorted(entries):
        # the journal, a snapshot copy of any run (hcp-etcd-restore[.<run>].snap.db), a partial file
        if entry == ".hcp-etcd-journal.json" or (entry.startswith("hcp-etcd-restore.") and entry.endswith(".snap.db")) or entry.endswith(".tmp"):
            bad.append("%s: %s left" % (member, entry))
    for entry in sorted(new):
        if entry.startswith("data.pre-restore-") and "/var/lib/" + entry != previous:
            bad.append("%s: %s holds old data no marker names" % (member, entry))
print("; ".join(bad))
sys.exit(1 if bad else 0)
PY
}

# tidy: remove what the earlier cases left on the member volumes with the tool's own cleanup (it keeps the live data and
# the previous data the marker names): every restore keeps its data before, or a rolled-back one its failed data, and
# without this the 1Gi volumes are full after about a dozen cases of a walk and every later one is refused in pre-flight.
tidy() {
  ansible-playbook playbooks/cleanup.yml -e cluster_name=$NAME -e confirm=true >"$OUT/tidy.log" 2>&1 \
    || log "tidy: playbooks/cleanup.yml failed (log $OUT/tidy.log)"
}

case_walk() {
  local spec=$1 kind=${1%%:*} rest regex n action pre t0=$SECONDS rc msg outcome why matched left
  rest=${spec#*:}; action=${rest##*:}; rest=${rest%:*}; n=${rest##*:}; regex=${rest%:*}
  pre=$OUT/walk-$(echo "$spec" | tr -c 'A-Za-z0-9_.-' '_')
  log "walk $spec: damage, restore with the fault, then judge every member"
  tidy
  damage soft || { record "walk $spec" FAIL "could not prepare the damage"; return; }
  digests >"$pre.digest.before"; volumes >"$pre.volumes.before"
  rm -f "$pre.count"
  # shellcheck disable=SC2046
  HCP_ETCD_FAULT="$(walk_trigger "$kind")$(walk_prefix "$kind")$regex:$n:$action" \
    HCP_ETCD_FAULT_COUNT_FILE=$pre.count play_bg "$pre.run.log" $(restore_args)
  play_wait; rc=$?
  msg=$(grep -oE '(RESTORE FAILED[^"]*|The data is restored[^"]*)' "$pre.run.log" | tail -n1 | cut -c1-400)
  # the walked fault is the last of HCP_ETCD_FAULT: it must have met its n-th exec
  matched=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], 0))' "$pre.count" \
            "$([ "$kind" = rollback ] && echo 1 || echo 0)" 2>/dev/null)
  [ "${matched:-0}" -ge "$n" ] || { record "walk $spec" FAIL "the fault met ${matched:-0} of $n execs (log $pre.run.log)"; return; }
  if [ $rc -eq 0 ]; then
    outcome="absorbed (run finished)"
    check_outcome "$pre" >"$pre.outcome" || { record "walk $spec" FAIL "rc=0 without the full outcome: $(cat "$pre.outcome")"; return; }
    why="restored data verified (A on 3 members)"
  elif [[ $msg == *"ROLLED BACK"* || $msg == *"BEFORE ANY ETCD DATA CHANGED"* ]]; then
    outcome="rolled back"
    etcd_ready || { record "walk $spec" FAIL "'$msg' but etcd is not 3/3 ready"; return; }
    digests >"$pre.digest.after"
    if ! diff -q "$pre.digest.before" "$pre.digest.after" >/dev/null; then
      record "walk $spec" FAIL "'${msg:0:120}' but the data differs from before: $(diff "$pre.digest.before" "$pre.digest.after" | grep '^>' | head -3 | tr '\n' ' ')"; return
    fi
    why="old data on 3 members (digests as before: $(awk '{print $2 $8}' "$pre.digest.after" | tr '\n' ' '))"
  elif [ -n "$msg" ]; then
    outcome="not rolled back; rerun"
    rerun "$pre" || { record "walk $spec" FAIL "'${msg:0:160}'; rerun rc=$rerun_rc (logs $pre.*)"; return; }
    why="rerun ${rerun_s}s: restored data verified (A on 3 members)"
  else
    record "walk $spec" FAIL "rc=$rc and no report of the state left (log $pre.run.log)"; return
  fi
  etcd_ready
  volumes >"$pre.volumes.after"
  left=$(orphans "$pre.volumes.before" "$pre.volumes.after") || { record "walk $spec" FAIL "$outcome; orphaned: $left"; return; }
  record "walk $spec" PASS "$outcome: $why; nothing orphaned; $((SECONDS - t0))s"
}

# The full walk: one traced run of each kind lists the execs of etcd-1's swap and rollback. Every exec is
# walked with the first action before any with the second, so a walk cut short has still met every exec.
walk_points() {
  local kind a i
  local -A count
  if [ -n "${FAULT_WALK:-}" ]; then echo "$FAULT_WALK" | tr ',' '\n'; return; fi
  for kind in swap rollback; do
    damage soft >/dev/null || return 1
    # shellcheck disable=SC2046
    HCP_ETCD_FAULT="$(walk_trigger "$kind")" HCP_ETCD_FAULT_TRACE=$OUT/walk-$kind.trace play_bg "$OUT/walk-$kind.trace.log" $(restore_args)
    play_wait
    count[$kind]=$(grep -cE "$(walk_prefix "$kind")" "$OUT/walk-$kind.trace" 2>/dev/null)
    log "walk: ${count[$kind]} execs in $WALK_POD's $kind ($OUT/walk-$kind.trace)" >&2
  done
  for a in ${FAULT_WALK_ACTIONS:-kill-after lose-exit fail kill}; do
    for kind in swap rollback; do
      for ((i = 1; i <= count[$kind]; i++)); do echo "$kind:.:$i:$a"; done
    done
  done
}

# ---- run ---------------------------------------------------------------------------------------------
log "K=$K Step headers per restore; points: $POINTS; cases: $CASES; logs: $OUT"
if ! setup; then log "setup FAILED (log $OUT/setup.log)"; exit 1; fi
setup_s=$SECONDS
for c in $CASES; do
  case $c in
    points) for p in $POINTS; do case_point "$p"; done ;;
    helper) case_helper helper-copy; case_helper helper-swap ;;
    helper-copy|helper-swap) case_helper "$c" ;;
    backup) case_backup ;;
    walk) walk_points >"$OUT/walk.points" || log "walk: tracing the execs failed"
          mapfile -t walk_list <"$OUT/walk.points"
          for w in "${walk_list[@]}"; do case_walk "$w"; done ;;
    *) log "unknown case $c"; status=1 ;;
  esac
done
printf '%s\n' "=== fault injection results (logs: $OUT)" "${results[@]}"
echo "faults: $tried points tried, $passed passed (K=$K Step boundaries per restore)"
echo "wall time: $((SECONDS - t_all)) s (setup $((setup_s - t_all)) s)"
[ "$tried" -gt 0 ] || status=1
exit $status
