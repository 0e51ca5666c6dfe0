#!/usr/bin/env bash
# make demo: the whole story on the local cluster, with a verdict a person can read.
#   local cluster -> miniature hosted control plane "demo" -> data set A -> backup -> more writes and
#   damage -> restore -> verdict per member. The JSON run report is written to a file, not the screen.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
. tests/cluster/versions.env
NAME=${NAME:-demo}
NS=clusters-$NAME
WORK=${DEMO_DIR:-$repo/tests/output/demo}
export PATH=$repo/.venv/bin:$PATH ANSIBLE_COLLECTIONS_PATH=$repo/.collections ANSIBLE_CONFIG=$repo/ansible.cfg
start=$SECONDS
phase() { printf '\n\033[1m== %s\033[0m (%d s)\n' "$*" $((SECONDS - start)); }
data() { tests/tools/etcd-data "$@" --namespace "$NS"; }

phase "1. local cluster and miniature hosted control plane '$NAME'"
tests/cluster/cluster.sh up
export KUBECONFIG; KUBECONFIG=$(tests/cluster/cluster.sh kubeconfig)
export K8S_AUTH_KUBECONFIG=$KUBECONFIG
kubectl=$HOME/.cache/hcp-etcd/kubernetes-$KUBERNETES_VERSION/bin/kubectl
tests/cluster/hcp.sh up "$NAME" HighlyAvailable 3.5
rm -rf "$WORK"; mkdir -p -m 0700 "$WORK"

phase "2. seed data set A"
data seed --set A
data digest

phase "3. back up (online, no downtime): playbooks/backup.yml"
ansible-playbook playbooks/backup.yml -e cluster_name="$NAME" -e backup_dir="$WORK/backups" | tee "$WORK/backup.log" \
  | sed -n '/"msg": \[/,/\]/p' | grep -vE '^\s*("msg": \[|\])' || true
snapshot=$(ls -d "$WORK"/backups/clusters/"$NAME"/*/etcd-snapshot.db | tail -n 1)
echo "snapshot: $snapshot"; echo "sidecar:  $snapshot.json"

phase "4. more writes (data set B, part of A deleted), then damage: member data lost on etcd-1 and etcd-2, etcd-0 crash-looping"
data seed --set B
data delete --set A
for m in etcd-1 etcd-2; do "$kubectl" -n "$NS" exec "$m" -c etcd -- sh -c 'rm -rf /var/lib/data/member && kill 1' || true; done
"$kubectl" -n "$NS" exec etcd-0 -c etcd -- sh -c 'truncate -s 8192 /var/lib/data/member/snap/db && kill 1' || true
sleep 5
"$kubectl" -n "$NS" get pods -l app=etcd

phase "5. restore: ansible-playbook playbooks/restore.yml -e cluster_name=$NAME -e snapshot=... -e confirm=true"
restore_start=$SECONDS
ansible-playbook playbooks/restore.yml -e cluster_name="$NAME" -e snapshot="$snapshot" -e confirm=true \
  -e restore_work_dir="$WORK/restore" > "$WORK/restore.log" 2>&1 &
pid=$!
while kill -0 $pid 2>/dev/null; do
  sleep 10
  printf '   ... %3d s: %s\n' $((SECONDS - restore_start)) "$(grep -E '^TASK \[' "$WORK/restore.log" | tail -n 1 | sed 's/^TASK \[\(.*\)\] \**$/\1/')"
done
wait $pid && rc=0 || rc=$?
echo "restore exit code: $rc (full output: $WORK/restore.log)"

phase "6. verdict"
report=$(ls "$WORK"/restore/restore-*.json 2>/dev/null | tail -n 1)
ok=yes
data verify --expect A --absent B --members 3 || ok=no
python3 - "$report" "$NAME" "$kubectl" <<'PY' || ok=no
import json, subprocess, sys, datetime
report_path, name, kubectl = sys.argv[1:4]
report = json.load(open(report_path))
ns = "clusters-" + name
def get(*args):
    return json.loads(subprocess.check_output([kubectl, "-n", ns, "get", "-o", "json"] + list(args)))
ok = True
for dep, want in report["api_replicas"].items():
    d = get("deployment", dep)
    good = d["spec"]["replicas"] == want and d["status"].get("availableReplicas", 0) == want
    ok &= good
    print("API %-26s replicas %d/%d as recorded: %s" % (dep, d["status"].get("availableReplicas", 0), want, "yes" if good else "NO"))
hc = json.loads(subprocess.check_output([kubectl, "-n", "clusters", "get", "hostedcluster", name, "-o", "json"]))
unpaused = "pausedUntil" not in hc["spec"]
ok &= unpaused
print("HostedCluster unpaused: %s" % ("yes" if unpaused else "NO"))
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
if report.get("api_stopped_at") and report.get("api_started_at"):
    print("API downtime: %.0f s" % (t(report["api_started_at"]) - t(report["api_stopped_at"])).total_seconds())
print("restore outcome: %s; run report: %s" % (report["outcome"], report_path))
sys.exit(0 if ok and report["outcome"] == "restored" else 1)
PY
[ "$rc" = 0 ] || ok=no
printf '\nDEMO VERDICT: %s (total %d s). Remove it all with: make demo-down\n' "$([ $ok = yes ] && echo 'ALL YES' || echo 'FAILED')" $((SECONDS - start))
[ $ok = yes ]
