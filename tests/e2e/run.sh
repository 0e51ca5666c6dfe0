#!/usr/bin/env bash
# The end-to-end proof: every molecule scenario, the fleet and the reduced fault run against a real
# Kubernetes. Uses $KUBECONFIG when it is set (kind or any disposable cluster), otherwise brings up the
# local cluster (make cluster-up).
#
#   tests/e2e/run.sh                          everything, E2E_JOBS (default 2) at a time
#   SCENARIOS="rerun backup" tests/e2e/run.sh         only these (molecule scenarios, fleet, faults-ci)
#   E2E_JOBS=1 tests/e2e/run.sh               one after the other
#
# Each scenario has its own control plane (its own HostedCluster and namespace), so independent
# scenarios run at the same time on the shared cluster. Most of their time is ansible's own CPU (a Python
# process per task): two at a time fill the 2 cores, a third only slows the others. The longest start
# first. Each one's output goes to its own log; a summary with each one's wall time is printed at the end.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
. tests/cluster/versions.env

if [ -z "${KUBECONFIG:-}" ]; then
  tests/cluster/cluster.sh up
  KUBECONFIG=$(tests/cluster/cluster.sh kubeconfig)
fi
export KUBECONFIG K8S_AUTH_KUBECONFIG=$KUBECONFIG
export HCP_ETCD_REPO=$repo
export HCP_ETCD_KUBECTL=${HCP_ETCD_KUBECTL:-$HOME/.cache/hcp-etcd/kubernetes-$KUBERNETES_VERSION/bin/kubectl}
export HCP_ETCD_E2E_DIR=${HCP_ETCD_E2E_DIR:-$repo/tests/output/e2e}
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 NO_COLOR=1 ANSIBLE_NOCOLOR=1
export ANSIBLE_COLLECTIONS_PATH=$repo/.collections
export PATH=$repo/.venv/bin:$PATH
mkdir -p "$HCP_ETCD_E2E_DIR"

# Longest first (wall seconds measured two at a time on the 2-core machine), so that the lanes end together.
ALL="faults-ci refusals fleet restore_single rerun restore_etcd36 restore_db_copy restore_etcd34 hosted_api backup artifact"
# The reduced fault run: the controller killed mid-swap (the rerun resumes), and one point of the exec
# walk: the module killed right after etcd-1's data was moved aside (the run rolls back from the journal).
# The kill while the API stops (3+3), the helper pod lost mid-swap and the rest run in make e2e-faults.
CI_FAULT_POINTS=${CI_FAULT_POINTS:-8+async}
CI_FAULT_WALK=${CI_FAULT_WALK:-swap:mv -T:1:kill-after}
items=${SCENARIOS:-$ALL}
jobs=${E2E_JOBS:-2}
t_all=$SECONDS

ts() { date +%H:%M:%S; }

# run_item NAME LOG: one scenario, output to LOG; its exit status.
run_item() {
  local name=$1 log=$2
  case $name in
    fleet)      # the hcp.etcd.hosted_clusters inventory and one backup run for two control planes
      tests/e2e/fleet.sh ;;
    artifact)   # the built collection installed into a fresh venv, backup and restore from that install
      tests/artifact/run.sh ;;
    hosted_api) # the real kube-apiserver on the hosted etcd: objects and an informer across the restore
      tests/e2e/hosted_api.sh ;;
    faults-ci)  # the full matrix is make e2e-faults
      FAULT_POINTS=$CI_FAULT_POINTS FAULT_WALK=$CI_FAULT_WALK FAULT_CASES=${CI_FAULT_CASES:-points walk} tests/e2e/faults.sh ;;
    *)
      cd tests/e2e
      # molecule keeps "prepared" in its state between runs; this driver has no destroy to clear it
      molecule --base-config molecule/base.yml reset -s "$name" > /dev/null 2>&1 || true
      molecule --base-config molecule/base.yml test -s "$name" ;;
  esac > "$log" 2>&1
}

declare -A pid_of=() start_of=() log_of=()
summary=() failed=()
status=0

finish() {  # NAME: collect one finished scenario
  local name=$1 rc=0 result=passed log=${log_of[$1]}
  wait "${pid_of[$name]}" || rc=$?
  [ "$rc" = 0 ] || { result=FAILED; status=1; failed+=("$name"); }
  echo "=== $(ts) $name $result in $((SECONDS - ${start_of[$name]})) s (log: $log)"
  grep -hoE '(verify etcd-[0-9]+: [^"]*|VERDICT: [^"]*|RESULT .*|faults: .*)' "$log" | awk '!seen[$0]++' || true
  [ "$result" = passed ] || tail -n 60 "$log"
  summary+=("$(printf '%-18s %-7s %4d s' "$name" "$result" $((SECONDS - ${start_of[$name]})))")
  unset "pid_of[$name]"
}

reap() {  # wait until one scenario ends, then collect every one that has ended
  wait -n "${pid_of[@]}" || true
  for n in "${!pid_of[@]}"; do kill -0 "${pid_of[$n]}" 2>/dev/null || finish "$n"; done
}

for name in $items; do
  while [ "${#pid_of[@]}" -ge "$jobs" ]; do reap; done
  case $name in
    fleet|faults-ci|artifact|hosted_api) log_of[$name]=$HCP_ETCD_E2E_DIR/$name.log ;;
    *) [ -d "tests/e2e/molecule/$name" ] || { echo "unknown scenario $name (molecule scenarios, fleet, faults-ci, artifact, hosted_api)"; exit 2; }
       log_of[$name]=$HCP_ETCD_E2E_DIR/molecule-$name.log ;;
  esac
  echo "=== $(ts) start $name (log: ${log_of[$name]})"
  start_of[$name]=$SECONDS
  run_item "$name" "${log_of[$name]}" &
  pid_of[$name]=$!
done
while [ "${#pid_of[@]}" -gt 0 ]; do reap; done

# Key material must never reach any output.
if grep -lE -- '-----BEGIN [A-Z ]*PRIVATE KEY-----' "$HCP_ETCD_E2E_DIR"/*.log; then
  echo "FAIL: private key material in the output above"; status=1
fi
printf '%s\n' "=== end-to-end summary ($jobs at a time)" "${summary[@]}" "wall time: $((SECONDS - t_all)) s"
# Last, as CI shows only the end of the output: why each failed item failed (its first failed task and,
# for a restore, the restore's own error), and what the operator stand-in did last.
for name in "${failed[@]}"; do
  echo "=== why $name failed (full log: ${log_of[$name]})"
  # the failure that ended a play (a fatal not followed by "...ignoring", in a play that recaps failed=1+)
  awk '/^TASK \[/ {task=$0}
       /^(fatal|failed): / {blk=task; n=12}
       n > 0 {blk=blk "\n" $0; n--; if ($0 ~ /\.\.\.ignoring/) n=0}
       /\.\.\.ignoring/ {blk=""}
       /failed=[1-9]/ && blk != "" {print blk; exit}' "${log_of[$name]}" | cut -c1-240
  # a script scenario (fleet, faults, artifact): the lines before its first FAIL (a failed hcp.sh up shows its log tail)
  grep -m1 -B 25 -E '\[[a-z-]+\] FAIL: ' "${log_of[$name]}" | cut -c1-240 || true
  hcp=$(sed -n 's/^ *hcp_name: *//p' "tests/e2e/molecule/$name/molecule.yml" 2>/dev/null)
  [ -z "$hcp" ] || grep -hE '^(fatal|failed): |RESTORE' "$HCP_ETCD_E2E_DIR/$hcp"/restore-*.log 2>/dev/null | tail -n 3 | cut -c1-400
done
[ "${#failed[@]}" = 0 ] || tail -n 3 /var/tmp/hcp-etcd-operator/*.log 2>/dev/null | cut -c1-200
exit $status
