#!/usr/bin/env bash
# The end-to-end proof: every molecule scenario against a real Kubernetes. Uses $KUBECONFIG when it
# is set (kind or any disposable cluster), otherwise brings up the local cluster (make cluster-up).
# SCENARIOS="restore_ha backup" limits the run. Prints the wall time of each scenario.
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

scenarios=${SCENARIOS:-backup restore_ha restore_single restore_db_copy restore_etcd34 rerun least_privilege refusals}
scenarios=${scenarios//fleet/}
summary=()
status=0
cd tests/e2e
for scenario in $scenarios; do
  start=$SECONDS
  log=$HCP_ETCD_E2E_DIR/molecule-$scenario.log
  echo "=== scenario $scenario (log: $log)"
  # molecule keeps "prepared" in its state between runs; this driver has no destroy to clear it
  molecule --base-config molecule/base.yml reset -s "$scenario" > /dev/null 2>&1 || true
  if molecule --base-config molecule/base.yml test -s "$scenario" > "$log" 2>&1; then result=passed; else result=FAILED; status=1; fi
  grep -hoE '(verify etcd-[0-9]+: [^"]*|VERDICT: [^"]*)' "$log" | awk '!seen[$0]++' || true
  [ "$result" = passed ] || tail -n 60 "$log"
  summary+=("$(printf '%-18s %-7s %4d s' "$scenario" "$result" $((SECONDS - start)))")
done

# The fleet: the hcp.etcd.hosted_clusters inventory and one backup run for two control planes.
if [ -z "${SCENARIOS:-}" ] || [[ " $SCENARIOS " == *" fleet "* ]]; then
  start=$SECONDS
  log=$HCP_ETCD_E2E_DIR/fleet.log
  echo "=== fleet (log: $log)"
  if "$repo/tests/e2e/fleet.sh" > "$log" 2>&1; then result=passed; else result=FAILED; status=1; tail -n 60 "$log"; fi
  summary+=("$(printf '%-18s %-7s %4d s' fleet "$result" $((SECONDS - start)))")
fi

# Key material must never reach any output.
if grep -lE -- '-----BEGIN [A-Z ]*PRIVATE KEY-----' "$HCP_ETCD_E2E_DIR"/*.log; then
  echo "FAIL: private key material in the output above"; status=1
fi
printf '%s\n' "=== end-to-end summary" "${summary[@]}"
exit $status
