#!/usr/bin/env bash
# Why the restore waits for ReconciliationActive=False after pausing (HyperShift applies pause late):
# the same restore twice on a SingleReplica control plane of the miniature, whose operator stand-in
# copies pausedUntil HCP_OPERATOR_PAUSE_DELAY (3) seconds late and until then puts scaled-down API
# Deployments back:
# Here the pause of the demo's control plane takes effect 60 s late (annotation hcp-etcd.test/pause-delay).
#   1. from a copy of the collection whose pause.yml lacks the wait task (staging off, so that the
#      API is stopped right after the pause, as the published procedure does): the operator puts the
#      API back while the restore stops it; the run must not end restored and verified;
#   2. from the collection as it is: restored and verified.
# Not part of make test (it shows a failure on purpose); its output is quoted in DEVELOPERS.md.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
NAME=${PAUSE_DEMO_NAME:-pause-demo}
NS=clusters-$NAME
OUT=$repo/tests/output/pause-demo
export KUBECONFIG=${KUBECONFIG:-$(tests/cluster/cluster.sh kubeconfig)} PATH=$repo/.venv/bin:$PATH
export K8S_AUTH_KUBECONFIG=$KUBECONFIG ANSIBLE_FORCE_COLOR=0
log() { printf '%s [pause-demo] %s\n' "$(date +%H:%M:%S)" "$*"; }
rm -rf "$OUT"; mkdir -p "$OUT/nowait/ansible_collections/hcp/etcd"; chmod 700 "$OUT"

# the collection without the wait: a copy of the checkout's collection files, pause.yml cut after the patch
git ls-files -z | grep -zE '^(galaxy.yml|meta/|plugins/|roles/|playbooks/)' | xargs -0 cp --parents -t "$OUT/nowait/ansible_collections/hcp/etcd"
python3 - "$OUT/nowait/ansible_collections/hcp/etcd/roles/restore/tasks/pause.yml" <<'EOF'
import sys
path = sys.argv[1]
text = open(path).read()
cut = text.index("\n# Pause is asynchronous")
open(path, "w").write(text[:cut] + "\n")
EOF

log "control plane $NAME (SingleReplica), data set A, a backup"
tests/cluster/hcp.sh down "$NAME" >/dev/null 2>&1
tests/cluster/hcp.sh up "$NAME" SingleReplica 3.5 > "$OUT/hcp.log" 2>&1 || { tail "$OUT/hcp.log"; exit 1; }
# this control plane's pause takes effect 60 s late (a busy operator), longer than a restore needs to stop the API
kubectl_() { "$HOME/.cache/hcp-etcd/kubernetes-$(sed -n 's/^KUBERNETES_VERSION=//p' tests/cluster/versions.env)/bin/kubectl" "$@"; }
kubectl_ -n "$NS" annotate hostedcontrolplane "$NAME" hcp-etcd.test/pause-delay=60 --overwrite >/dev/null
tests/tools/etcd-data seed --namespace "$NS" --set A > "$OUT/data.log" 2>&1
ansible-playbook playbooks/backup.yml -e cluster_name="$NAME" -e backup_dir="$OUT/backups" > "$OUT/backup.log" 2>&1 || { tail "$OUT/backup.log"; exit 1; }
snap=$(ls -1 "$OUT"/backups/clusters/"$NAME"/*/etcd-snapshot.db | tail -n1)
ops=/var/tmp/hcp-etcd-operator/$(printf '%s' "$KUBECONFIG" | sha256sum | cut -c1-12).log

for variant in nowait as-is; do
  tests/tools/etcd-data seed --namespace "$NS" --set B >> "$OUT/data.log" 2>&1
  mark=$(wc -l < "$ops")
  log "restore, collection $variant"
  if [ "$variant" = nowait ]; then cp_path=$OUT/nowait; else cp_path=$repo/.collections; fi
  ANSIBLE_COLLECTIONS_PATH=$cp_path ansible-playbook "$cp_path/ansible_collections/hcp/etcd/playbooks/restore.yml" \
    -e cluster_name="$NAME" -e snapshot="$snap" -e confirm=true -e force=true -e restore_stage_before_outage=false \
    -e restore_wait_timeout=90 -e restore_work_dir="$OUT/restore-$variant" > "$OUT/restore-$variant.log" 2>&1
  rc=$?
  log "  rc=$rc; $(grep -oE 'RESTORE [A-Z ]+|restored and verified[^"]*' "$OUT/restore-$variant.log" | head -n1)"
  log "  the operator meanwhile: $(tail -n +"$((mark + 1))" "$ops" | grep "$NS" | sed 's/^[0-9:]* \[hcp-operator\] //' | tr '\n' ';')"
  tests/tools/etcd-data verify --namespace "$NS" --expect A --absent B --members 1 > "$OUT/verify-$variant.log" 2>&1 \
    && log "  data: A exactly, B absent" || log "  data: NOT the snapshot's ($(tail -n1 "$OUT/verify-$variant.log"))"
done
tests/cluster/hcp.sh down "$NAME" >/dev/null 2>&1
