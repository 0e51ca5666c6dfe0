#!/usr/bin/env bash
# Fleet backup scaling (make bench-fleet; the end of make bench): ONE run of playbooks/backup.yml over the
# hcp.etcd.hosted_clusters inventory, limited to 1, 2, 4 and 8 miniature control planes with as many forks,
# alternated inside each repetition. Reports the wall time, its ratio to one control plane's, and the
# controller's peak memory: the summed PSS of every process of the run (ansible-playbook, its forks and their
# module processes: the process tree), sampled every 0.2 s. Beside each run, the same N control planes are backed up
# by N bare scripts at once (bench/bare-backup.sh: etcdctl snapshot save, kubectl cp, sha256sum), so the table shows
# how a minimal tool scales on the same machine: the floor of the ratio. Writes bench/fleet.md (BENCH_OUT to put
# it elsewhere).
#
# Env: BENCH_FLEET_SIZES ("1 2 4 8"), BENCH_REPS (3), BENCH_FLEET_MIB (16: MiB of bulk data seeded into each
#      etcd), BENCH_FLEET_POLICY (SingleReplica: 8 HighlyAvailable control planes are 24 etcd and 72 API pods on
#      2 cores), BENCH_KEEP=1 keeps the control planes, BENCH_SMOKE=1 (1 and 2 control planes, 1 MiB, 1 run).
. "$(dirname "$0")/env.sh"
export HOSTED_CLUSTER_NAMESPACE=bench-fleet
if [ "${BENCH_SMOKE:-0}" = 1 ]; then default_sizes="1 2" default_reps=1 default_mib=1; else default_sizes="1 2 4 8" default_reps=3 default_mib=16; fi
read -r -a sizes <<<"${BENCH_FLEET_SIZES:-$default_sizes}"
reps=${BENCH_REPS:-$default_reps}
mib=${BENCH_FLEET_MIB:-$default_mib}
policy=${BENCH_FLEET_POLICY:-SingleReplica}
max=0; for n in "${sizes[@]}"; do [ "$n" -gt "$max" ] && max=$n; done
work=${BENCH_WORK:-/tmp/hcp-etcd-bench}/fleet-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$work"
log() { printf '%s [fleet-bench] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
names=(); for i in $(seq 1 "$max"); do names+=("bf-$i"); done
cleanup() {
  [ "${BENCH_KEEP:-0}" = 1 ] && return
  for c in "${names[@]}"; do tests/cluster/hcp.sh down "$c" >>"$work/down.log" 2>&1 || true; done
}
trap cleanup EXIT

# the control planes, two at a time, each seeded
t=$SECONDS
for ((i = 0; i < max; i += 2)); do
  pids=()
  for c in "${names[@]:i:2}"; do
    (tests/cluster/hcp.sh up "$c" "$policy" >"$work/up-$c.log" 2>&1 \
      && tests/tools/etcd-data seed --namespace "$HOSTED_CLUSTER_NAMESPACE-$c" --size-mib "$mib" >"$work/seed-$c.log" 2>&1) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || { log "FAIL: a control plane did not come up (logs in $work)"; exit 1; }; done
done
log "$max $policy control planes up and seeded with $mib MiB each in $((SECONDS - t)) s"
inv=$work/hosted_clusters.yml
printf -- '---\nplugin: hcp.etcd.hosted_clusters\nnamespaces: [%s]\n' "$HOSTED_CLUSTER_NAMESPACE" >"$inv"

# tree_mem PID: the summed proportional set size (PSS, KiB: shared pages divided among the processes that share
# them, so that forks are not counted twice) of PID and every process below it, and their count
tree_mem() {
  local pids
  pids=$(ps -e -o pid=,ppid= | awk -v root="$1" '
    { parent[$1] = $2 }
    END { for (p in parent) { q = p; while (q != "" && q != 0 && q != root) q = parent[q]; if (q == root) print p } }')
  # shellcheck disable=SC2086
  (cd /proc && cat $(printf '%s/smaps_rollup ' $pids) 2>/dev/null) | awk '/^Pss:/ {s += $2; n++} END {print s + 0, n + 0}'
}
# run N: one backup playbook over the first N clusters with N forks; prints "wall_seconds peak_rss_kib backups"
run() {
  local n=$1 rep=$2 dir=$work/backups-$1-$2 limit start peak=0 nprocs=0 rss procs sid
  limit=$(printf "$HOSTED_CLUSTER_NAMESPACE/%s," "${names[@]:0:n}")
  start=$(date +%s.%N)
  ansible-playbook playbooks/backup.yml -i "$inv" -e hcp_targets=all --limit "${limit%,}" --forks "$n" \
    -e "backup_dir=$dir" >"$work/backup-$n-$rep.log" 2>&1 &
  sid=$!
  while kill -0 "$sid" 2>/dev/null; do
    read -r rss procs < <(tree_mem "$sid")
    [ "$rss" -gt "$peak" ] && peak=$rss
    [ "$procs" -gt "$nprocs" ] && nprocs=$procs
    sleep 0.2
  done
  wait "$sid" || { log "FAIL: backup of $n control planes (log $work/backup-$n-$rep.log)"; exit 1; }
  echo "$(python3 -c "import time; print(round(time.time() - $start, 1))") $peak $(find "$dir" -name etcd-snapshot.db.json | wc -l) $nprocs"
}
# bare N: bench/bare-backup.sh on the first N control planes at once; prints "wall_seconds"
bare() {
  local n=$1 rep=$2 dir=$work/bare-$1-$2 start c pid pids=()
  mkdir -p "$dir"
  start=$(date +%s.%N)
  for c in "${names[@]:0:n}"; do
    bench/bare-backup.sh "$HOSTED_CLUSTER_NAMESPACE-$c" "$dir/$c.db" >>"$work/bare-$n-$rep.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || { log "FAIL: bare backups of $n control planes (log $work/bare-$n-$rep.log)"; exit 1; }; done
  python3 -c "import time; print(round(time.time() - $start, 1))"
  [ "$(find "$dir" -name '*.db.sha256' | wc -l)" -eq "$n" ] || { log "FAIL: not $n bare backups in $dir"; exit 1; }
  rm -f "$dir"/*.db  # the checksums stay; the copies are only timed
}
results=$work/results.txt
: >"$results"
for rep in $(seq 1 "$reps"); do
  for n in "${sizes[@]}"; do
    read -r wall peak count nprocs < <(run "$n" "$rep")
    [ "$count" -eq "$n" ] || { log "FAIL: $count complete backups for $n control planes"; exit 1; }
    bare_wall=$(bare "$n" "$rep")
    log "rep $rep: $n control plane(s), $n fork(s): ${wall} s, peak controller memory $((peak / 1024)) MiB in up to $nprocs processes, $count complete backups; $n bare scripts at once: ${bare_wall} s"
    echo "$n $rep $wall $peak $bare_wall" >>"$results"
  done
done

out=${BENCH_OUT:-$here}
mkdir -p "$out"
python3 - "$results" "$policy" "$mib" "$reps" <<'PY' | tee "$out/fleet.md"
import collections, statistics, sys, time, os
rows, bare = collections.defaultdict(list), collections.defaultdict(list)
for line in open(sys.argv[1]):
    n, _rep, wall, peak, bare_wall = line.split()
    rows[int(n)].append((float(wall), int(peak)))
    bare[int(n)].append(float(bare_wall))
policy, mib, reps = sys.argv[2], sys.argv[3], sys.argv[4]
print("# Fleet backup: one playbook run over N control planes with N forks (bench/fleet.sh)\n")
print("%s control planes of the miniature, %s MiB of etcd data each, median of %s runs alternated by size; peak" % (policy, mib, reps))
print("controller memory is the summed PSS of every process of the run (its process tree), sampled every 0.2 s. %s, %d cores.\n"
      % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.cpu_count()))
print("Bare scripts: bench/bare-backup.sh on the same N control planes at once, right after each playbook run.\n")
print("| control planes | forks | wall time | min - max | per control plane | x one control plane | peak controller memory"
      " | bare scripts | bare x one | ours / bare |")
print("|---|---|---|---|---|---|---|---|---|---|")
one = statistics.median(w for w, _p in rows[min(rows)])
bare_one = statistics.median(bare[min(bare)])
for n in sorted(rows):
    walls = [w for w, _p in rows[n]]
    med, bare_med = statistics.median(walls), statistics.median(bare[n])
    print("| %d | %d | %.1f s | %.1f - %.1f s | %.1f s | %.2fx | %.0f MiB | %.1f s (%.1f - %.1f) | %.2fx | %.2fx |" % (
        n, n, med, min(walls), max(walls), med / n, med / one, max(p for _w, p in rows[n]) / 1024.0,
        bare_med, min(bare[n]), max(bare[n]), bare_med / bare_one, med / bare_med))
PY
