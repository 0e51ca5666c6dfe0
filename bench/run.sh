#!/usr/bin/env bash
# hcp.etcd benchmark (make bench). Not part of make test. See docs/benchmark.md.
#
#   bench/run.sh                 full run: restore and backup 64/512/2048 MiB, transfer 64/512/2048 MiB, 3 repetitions
#   BENCH_SMOKE=1 bench/run.sh   tiny sizes, 1 repetition (a few minutes): checks the harness
#
# Env: BENCH_REPS (3), BENCH_RESTORE_SIZES ("64 512 2048", MiB of bulk data seeded into etcd; restore and backup),
#      BENCH_XFER_SIZES ("64 512 2048", MiB), BENCH_SECTIONS ("transfer backup restore"),
#      BENCH_RESTORE_TOOLS ("restore.yml correct floor": ours, and bench/by-hand.sh's correct manual restore and
#      floor; "documented" adds the published procedure, which breaks this control plane (docs/benchmark.md);
#      restore.yml-all-at-once is ours with restore_stop_leader_last=false; restore.yml@REV is restore.yml of an
#      earlier revision, from a git worktree of REV under BENCH_WORK, to measure a change side by side),
#      BENCH_BACKUP_TOOLS ("backup.yml bare-script"; backup.yml@REV as restore.yml@REV),
#      BENCH_XFER_TIMEOUT (s per transfer, 600), BENCH_WORK (/tmp/hcp-etcd-bench), BENCH_KEEP=1 keeps
#      the bench-* control planes, BENCH_OUT (bench/) where results.{md,png,jsonl} go.
#      Several runs (e.g. sections run side by side) are merged with:
#        bench/report.py bench/results.md bench/results.png RUN1/results.jsonl RUN2/results.jsonl ...
# Every comparison alternates A,B,A,B... inside one run; results are reported as median/min/max and
# as ratios of the two sides measured in the same run.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
. tests/cluster/versions.env
export PATH=$repo/.venv/bin:$PATH ANSIBLE_COLLECTIONS_PATH=$repo/.collections ANSIBLE_CONFIG=$repo/ansible.cfg
export KUBECTL=${KUBECTL:-${HCP_ETCD_CACHE:-$HOME/.cache/hcp-etcd}/kubernetes-$KUBERNETES_VERSION/bin/kubectl}
if [ -z "${KUBECONFIG:-}" ]; then KUBECONFIG=$(tests/cluster/cluster.sh kubeconfig); fi
export KUBECONFIG

SMOKE=${BENCH_SMOKE:-0}
if [ "$SMOKE" = 1 ]; then
  REPS=${BENCH_REPS:-1}; RESTORE_SIZES=${BENCH_RESTORE_SIZES:-8}; XFER_SIZES=${BENCH_XFER_SIZES:-4 16}
else
  REPS=${BENCH_REPS:-3}; RESTORE_SIZES=${BENCH_RESTORE_SIZES:-64 512 2048}; XFER_SIZES=${BENCH_XFER_SIZES:-64 512 2048}
fi
SECTIONS=${BENCH_SECTIONS:-transfer backup restore}
RESTORE_TOOLS=${BENCH_RESTORE_TOOLS:-restore.yml correct floor}
BACKUP_TOOLS=${BENCH_BACKUP_TOOLS:-backup.yml bare-script}
XFER_TIMEOUT=${BENCH_XFER_TIMEOUT:-600}
WORKROOT=${BENCH_WORK:-/tmp/hcp-etcd-bench}
RUN=$WORKROOT/run-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RUN"
RESULTS=$RUN/results.jsonl
: > "$RESULTS"
LOG=$RUN/bench.log
T0=$SECONDS

log() { printf '%s [bench] %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$LOG" >&2; }
k() { "$KUBECTL" "$@"; }
now() { date +%s.%N; }
# rec KEY=VALUE...: append one JSON result line (values that look numeric stay numbers).
rec() { python3 - "$@" >> "$RESULTS" <<'PY'
import json, sys
d = {}
for kv in sys.argv[1:]:
    k, v = kv.split("=", 1)
    try:
        d[k] = int(v) if v.lstrip("-").isdigit() else float(v)
    except ValueError:
        d[k] = v
print(json.dumps(d))
PY
}
maxrss_mib() { awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$1"; }
sha_local() { sha256sum "$1" | cut -d' ' -f1; }
sha_remote() {  # retried once: under load an exec can fail, which is not a wrong file
  local s; s=$(k exec -n "$1" -c etcd "$2" -- sha256sum "$3" 2>/dev/null | cut -d' ' -f1)
  [ -n "$s" ] || { sleep 2; s=$(k exec -n "$1" -c etcd "$2" -- sha256sum "$3" 2>/dev/null | cut -d' ' -f1); }
  echo "${s:-unreadable}"
}

log "run dir $RUN; smoke=$SMOKE reps=$REPS restore sizes=[$RESTORE_SIZES] transfer sizes=[$XFER_SIZES] sections=[$SECTIONS]"
log "load: $(cut -d' ' -f1-3 /proc/loadavg); disk: $(df -h / | awk 'NR==2 {print $4" free"}')"
pip install -q --disable-pip-version-check -r "$here/requirements.txt" >>"$LOG" 2>&1 || log "WARN: pip install matplotlib failed (no chart)"

CREATED=()
cleanup() {
  local c; for c in "${CREATED[@]}"; do done_with "$c"; done
  rm -f "$RUN"/src-*.bin "$RUN"/dst-*.bin
}
trap cleanup EXIT
# Remove a control plane as soon as the sections are done with it: an idle one is not idle (its API writers
# run etcdctl every second, its probes every 2 s), and four of them at once loaded the 2-core machine under
# every later measurement (load average 10-14 in the run of 2026-11-30 20:28 UTC).
done_with() {  # NAME
  [ "${BENCH_KEEP:-0}" = 1 ] && return 0
  tests/cluster/hcp.sh down "$1" >>"$LOG" 2>&1 || log "WARN: hcp.sh down $1 failed"
  local kept=() c; for c in "${CREATED[@]}"; do [ "$c" = "$1" ] || kept+=("$c"); done; CREATED=("${kept[@]}")
}
up() {  # NAME [PVC size]
  CREATED+=("$1")
  HCP_DATA_SIZE=${2:-1Gi} tests/cluster/hcp.sh up "$1" >>"$LOG" 2>&1 || { log "ERROR: hcp.sh up $1 failed"; exit 1; }
}

# ---- 2. transfer ------------------------------------------------------------------------------
# run_xfer TOOL DIR SIZE REP NS POD LOCAL REMOTE: one timed transfer under /usr/bin/time -v.
run_xfer() {
  local tool=$1 dir=$2 size=$3 rep=$4 ns=$5 pod=$6 local_f=$7 remote=$8 cmd=()
  case $tool/$dir in
    ours/up) cmd=(python3 "$here/transfer.py" upload "$ns" "$pod" etcd "$local_f" "$remote") ;;
    ours/down) cmd=(python3 "$here/transfer.py" download "$ns" "$pod" etcd "$remote" "$local_f") ;;
    kubectl-cp/up) cmd=("$KUBECTL" cp -c etcd "$local_f" "$ns/$pod:$remote") ;;
    kubectl-cp/down) cmd=("$KUBECTL" cp -c etcd "$ns/$pod:$remote" "$local_f") ;;
    k8s_cp/up) cmd=(ansible localhost -m kubernetes.core.k8s_cp -a "namespace=$ns pod=$pod container=etcd remote_path=$remote local_path=$local_f state=to_pod") ;;
    k8s_cp/down) cmd=(ansible localhost -m kubernetes.core.k8s_cp -a "namespace=$ns pod=$pod container=etcd remote_path=$remote local_path=$local_f state=from_pod") ;;
  esac
  local tv=$RUN/time-$tool-$dir-$size-$rep.txt t1 t2 rc sha want
  t1=$(now)
  timeout "$XFER_TIMEOUT" /usr/bin/time -v -o "$tv" "${cmd[@]}" >"$tv.out" 2>&1; rc=$?
  cat "$tv.out" >> "$LOG"
  # ours: the transfer alone (in-process, without interpreter start-up and imports)
  local inner; inner=$(python3 -c "import json,sys;print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])['seconds'])" "$tv.out" 2>/dev/null || echo "")
  t2=$(now)
  want=$(cat "$RUN/src-$size.sha256")
  if [ $rc -eq 124 ]; then
    sha=timeout
  elif [ "$dir" = up ]; then sha=$(sha_remote "$ns" "$pod" "$remote"); else sha=$(sha_local "$local_f"); fi
  local ok=false; [ "$rc" = 0 ] && [ "$sha" = "$want" ] && ok=true
  local secs; secs=$(python3 -c "print(round($t2-$t1,3))")
  rec section=transfer tool="$tool" dir="$dir" size_mib="$size" rep="$rep" seconds="$secs" \
      mib_s="$(python3 -c "print(round($size/($t2-$t1),2))")" maxrss_mib="$(maxrss_mib "$tv" 2>/dev/null || echo 0)" \
      rc="$rc" sha_ok="$ok" sha_got="${sha:0:16}" ${inner:+inner_seconds=$inner}
  log "transfer $tool $dir ${size}MiB rep $rep: ${secs}s rc=$rc sha_ok=$ok rss=$(maxrss_mib "$tv" 2>/dev/null)MiB"
  [ $rc -eq 124 ] && return 124
  return 0
}

section_transfer() {
  local name=${BENCH_XFER_CLUSTER:-bench-xfer}
  local ns=clusters-$name pod=etcd-2 remote=/var/lib/bench-xfer.bin
  # The member volumes hold what they say (a full one stops etcd: "no space left on device"): room for the
  # largest file twice (a tool's temporary copy beside the file) and etcd's own data.
  local largest; largest=$(printf '%s\n' $XFER_SIZES | sort -n | tail -1)
  up "$name" "$(( largest * 2 / 1024 + 2 ))Gi"
  local -A dnf=()
  local tools=(ours kubectl-cp k8s_cp)
  for size in $XFER_SIZES; do
    head -c "${size}M" /dev/urandom > "$RUN/src-$size.bin"
    sha_local "$RUN/src-$size.bin" > "$RUN/src-$size.sha256"
    for rep in $(seq 1 "$REPS"); do
      for tool in "${tools[@]}"; do
        # upload (fresh remote), then download of what was uploaded
        k exec -n $ns -c etcd $pod -- rm -f $remote $remote.tmp >/dev/null 2>&1
        if [ -n "${dnf[$tool/up]:-}" ]; then rec section=transfer tool="$tool" dir=up size_mib="$size" rep="$rep" skipped="${dnf[$tool/up]}"
        else run_xfer "$tool" up "$size" "$rep" $ns $pod "$RUN/src-$size.bin" $remote || dnf[$tool/up]="timed out at ${size} MiB"; fi
        # the download always needs the source in the pod, whatever the upload tool did
        [ "$(sha_remote $ns $pod $remote)" = "$(cat "$RUN/src-$size.sha256")" ] || \
          k cp -c etcd "$RUN/src-$size.bin" "$ns/$pod:$remote" >>"$LOG" 2>&1
        rm -f "$RUN/dst-$size.bin"
        if [ -n "${dnf[$tool/down]:-}" ]; then rec section=transfer tool="$tool" dir=down size_mib="$size" rep="$rep" skipped="${dnf[$tool/down]}"
        else run_xfer "$tool" down "$size" "$rep" $ns $pod "$RUN/dst-$size.bin" $remote || dnf[$tool/down]="timed out at ${size} MiB"; fi
        rm -f "$RUN/dst-$size.bin" "$RUN"/.dst-*.part
      done
    done
    k exec -n $ns -c etcd $pod -- rm -f $remote $remote.tmp >/dev/null 2>&1
    rm -f "$RUN/src-$size.bin"
  done
  done_with "$name"
}

# ---- restore clusters: seed once per size -------------------------------------------------------
prepare_restore_cluster() {  # SIZE
  local size=$1 name=bench-r$1 ns=clusters-bench-r$1
  k get ns "$ns" >/dev/null 2>&1 && return 0
  up "$name" "$(( (size * 4 / 1024) + 2 ))Gi"
  tests/tools/etcd-data seed --namespace "$ns" --set A >>"$LOG" 2>&1 || log "WARN: seed set A failed"
  tests/tools/etcd-data seed --namespace "$ns" --size-mib "$size" >>"$LOG" 2>&1 || log "WARN: bulk seed failed"
  log "seeded $ns: set A + $size MiB bulk"
}

# ---- 3. online backup ---------------------------------------------------------------------------
section_backup() {
  for size in $RESTORE_SIZES; do
    prepare_restore_cluster "$size"
    local name=bench-r$size ns=clusters-bench-r$size
    for rep in $(seq 1 "$REPS"); do
      local tool
      for tool in $BACKUP_TOOLS; do backup_once "$tool" "$size" "$rep"; done
    done
  done
}

backup_once() {  # TOOL SIZE REP: backup.yml, backup.yml@REV (from a worktree of REV) or bare-script
  local tool=$1 size=$2 rep=$3 name=bench-r$2 ns=clusters-bench-r$2 t1 t2 rc tree snap
  t1=$(now)
  case $tool in
    backup.yml)
      ansible-playbook playbooks/backup.yml -e cluster_name="$name" -e backup_dir="$RUN/backups-$size" -e backup_keep=2 >>"$LOG" 2>&1; rc=$? ;;
    backup.yml@*)
      tree=$(tree_at "${tool#backup.yml@}")
      (cd "$tree" && ANSIBLE_COLLECTIONS_PATH=$tree/.collections ANSIBLE_CONFIG=$tree/ansible.cfg \
        ansible-playbook playbooks/backup.yml -e cluster_name="$name" -e backup_dir="$RUN/backups-$size-rev" -e backup_keep=2) >>"$LOG" 2>&1; rc=$? ;;
    bare-script)
      bench/bare-backup.sh "$ns" "$RUN/bare-$size.db" >>"$LOG" 2>&1; rc=$? ;;
    *) log "unknown backup tool $tool"; exit 2 ;;
  esac
  t2=$(now)
  case $tool in
    backup.yml) snap=$(ls -1d "$RUN/backups-$size"/clusters/"$name"/*/etcd-snapshot.db 2>/dev/null | tail -1) ;;
    backup.yml@*) snap=$(ls -1d "$RUN/backups-$size-rev"/clusters/"$name"/*/etcd-snapshot.db 2>/dev/null | tail -1) ;;
    *) snap=$RUN/bare-$size.db ;;
  esac
  rec section=backup tool="$tool" size_mib="$size" rep="$rep" seconds="$(python3 -c "print(round($t2-$t1,2))")" rc=$rc \
      snapshot_mib="$(python3 -c "import os;print(round(os.path.getsize('$snap')/1048576,1))" 2>/dev/null || echo 0)"
  log "backup $tool ${size}MiB rep $rep: $(python3 -c "print(round($t2-$t1,1))")s rc=$rc"
  rm -f "$RUN/bare-$size.db"
}

# ---- 1 + 4. restore -----------------------------------------------------------------------------
# tree_at REV: a git worktree of revision REV (under WORKROOT, made once) with the collection linked into its own
# collections path; prints its directory. restore.yml@REV runs from it.
tree_at() {
  local dir=$WORKROOT/trees/$1
  if [ ! -d "$dir" ]; then
    git worktree add --detach "$dir" "$1" >>"$LOG" 2>&1 || { log "FAIL: no worktree of $1"; exit 1; }
    mkdir -p "$dir/.collections/ansible_collections/hcp"
    ln -sfn "$dir" "$dir/.collections/ansible_collections/hcp/etcd"
  fi
  echo "$dir"
}

restore_once() {  # TOOL SIZE REP SNAPSHOT
  local tool=$1 size=$2 rep=$3 snap=$4 name=bench-r$2 ns=clusters-bench-r$2
  local w=$RUN/restore-$tool-$size-$rep; mkdir -p "$w"
  python3 "$here/apiwatch.py" "$ns" "$w/apiwatch.json" & local watch=$!
  sleep 2
  local t1 t2 rc
  t1=$(now)
  if [ "$tool" = restore.yml ] || [ "$tool" = restore.yml-all-at-once ]; then
    ansible-playbook playbooks/restore.yml -e cluster_name="$name" -e snapshot="$snap" -e confirm=true -e force=true \
      -e restore_work_dir="$w" -e restore_stop_leader_last="$([ "$tool" = restore.yml ] && echo true || echo false)" \
      >"$w/out.log" 2>&1; rc=$?
  elif [[ $tool == restore.yml@* ]]; then
    local tree; tree=$(tree_at "${tool#restore.yml@}")
    (cd "$tree" && ANSIBLE_COLLECTIONS_PATH=$tree/.collections ANSIBLE_CONFIG=$tree/ansible.cfg \
      ansible-playbook playbooks/restore.yml -e cluster_name="$name" -e snapshot="$snap" -e confirm=true -e force=true \
      -e restore_work_dir="$w") >"$w/out.log" 2>&1; rc=$?
  elif [ "$tool" = documented ]; then
    CLUSTER_NAME=$name SNAPSHOT=$snap tests/e2e/documented-procedure.sh restore >"$w/out.log" 2>&1; rc=$?
  else  # correct | floor
    CLUSTER_NAME=$name SNAPSHOT=$snap bench/by-hand.sh "$tool" >"$w/out.log" 2>&1; rc=$?
  fi
  t2=$(now)
  # give the API up to 300 s after the procedure ends to become Available 3/3 again
  local waited=0
  while kill -0 $watch 2>/dev/null && [ $waited -lt 300 ]; do sleep 1; waited=$((waited + 1)); done
  kill $watch 2>/dev/null; wait $watch 2>/dev/null
  local verdict
  if tests/tools/etcd-data verify --namespace "$ns" --expect A --members 3 >"$w/verify.log" 2>&1; then verdict=OK; else verdict=FAIL; fi
  local detail; detail=$(grep -m1 -iE 'VERDICT' "$w/verify.log" | tr -d '"' | cut -c1-160)
  # Not timed: restore.yml keeps each member's previous data directory (restore_keep_previous_data); an operator
  # removes them with the cleanup playbook before the volumes fill up (at 512 MiB the third restore was refused:
  # "not enough space ... remove what earlier restores left there").
  case $tool in restore.yml*)
    ansible-playbook playbooks/cleanup.yml -e cluster_name="$name" -e confirm=true -e keep_previous=false >"$w/cleanup.log" 2>&1 ||
      log "WARN: cleanup after $tool ${size}MiB rep $rep failed (see $w/cleanup.log)" ;;
  esac
  python3 - "$w" "$tool" "$size" "$rep" "$rc" "$verdict" "$t1" "$t2" >> "$RESULTS" <<'PY'
import glob, json, sys
w, tool, size, rep, rc, verdict, t1, t2 = sys.argv[1:]
aw = {}
try:
    aw = json.load(open(w + "/apiwatch.json"))
except Exception:
    pass
d = dict(section="restore", tool=tool, size_mib=int(size), rep=int(rep), rc=int(rc), verify=verdict,
         wall_seconds=round(float(t2) - float(t1), 1), downtime_seconds=aw.get("downtime_seconds"))
reports = sorted(glob.glob(w + "/restore-*.json"))
if reports:
    r = json.load(open(reports[-1]))
    d["report_api_downtime_seconds"] = r.get("api_downtime_seconds")
    d["phases_reached_at"] = r.get("phases_reached_at")
    d["api_stopped_at"] = r.get("api_stopped_at")
    d["api_started_at"] = r.get("api_started_at")
    d["report_members"] = r.get("members")
print(json.dumps(d))
PY
  log "restore $tool ${size}MiB rep $rep: rc=$rc downtime=$(python3 -c "import json;print(json.load(open('$w/apiwatch.json')).get('downtime_seconds'))" 2>/dev/null)s verify=$verdict ($detail)"
}

section_restore() {
  for size in $RESTORE_SIZES; do
    prepare_restore_cluster "$size"
    local name=bench-r$size snap
    snap=$(ls -1d "$RUN/backups-$size"/clusters/"$name"/*/etcd-snapshot.db 2>/dev/null | tail -1)
    if [ -z "$snap" ]; then
      # no backup section in this run: prepare (not measured) the snapshot to restore with backup.yml
      ansible-playbook playbooks/backup.yml -e cluster_name="$name" -e backup_dir="$RUN/backups-$size" >>"$LOG" 2>&1
      snap=$(ls -1d "$RUN/backups-$size"/clusters/"$name"/*/etcd-snapshot.db | tail -1)
    fi
    log "restore ${size}MiB from $snap ($(du -m "$snap" | cut -f1) MiB)"
    for rep in $(seq 1 "$REPS"); do
      for tool in $RESTORE_TOOLS; do restore_once "$tool" "$size" "$rep" "$snap"; done
    done
    done_with "$name"
  done
}

for s in $SECTIONS; do "section_$s"; done
log "bench wall time $((SECONDS - T0)) s; load: $(cut -d' ' -f1-3 /proc/loadavg)"
rec section=meta wall_seconds=$((SECONDS - T0)) smoke="$SMOKE" reps="$REPS" run="$RUN"
OUT=${BENCH_OUT:-$here}
mkdir -p "$OUT"
cp "$RESULTS" "$OUT/results.jsonl"
python3 "$here/report.py" "$OUT/results.md" "$OUT/results.png" "$RESULTS" | tee -a "$LOG"
