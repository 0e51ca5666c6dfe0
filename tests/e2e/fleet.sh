#!/usr/bin/env bash
# End-to-end proof of the fleet backup: the hcp.etcd.hosted_clusters inventory plugin lists two
# miniature hosted control planes on a real Kubernetes, and ONE ansible-playbook run of
# playbooks/backup.yml (-e hcp_targets=all, --forks 2) makes a verified backup of each.
#
#   tests/e2e/fleet.sh          uses $KUBECONFIG, or the local cluster (tests/cluster/cluster.sh kubeconfig)
#
# The HostedClusters live in their own namespace (FLEET_NAMESPACE, default "fleet"), so the inventory
# (namespaces: [fleet]) sees only them on a shared cluster, and the roles run with a
# hosted_cluster_namespace other than "clusters". Control planes: fleet-fleet-a, fleet-fleet-b.
# Env: FLEET_POLICIES (default "HighlyAvailable SingleReplica", one per cluster), FLEET_KEEP=1 keeps
# the control planes and the work directory, HCP_ETCD_E2E_DIR (default tests/output/e2e).
# The same run copies both backups to a real S3 server (MinIO, tests/cluster/s3.sh, TLS) under
# s3://<bucket>/<run>/ and the store is then proven: objects equal the local files by sha256, fleet-a is
# restored from its s3:// URL (the local copy removed first) and verified on every member, wrong credentials
# and a missing bucket are refused before any backup is written, a connection cut mid-upload leaves no
# backup listed, and retention (backup_keep=1) in the bucket keeps the newest complete backup only.
# Removes both control planes on exit; exits non-zero on any failure; prints its wall time.
set -euo pipefail
start=$SECONDS
. "$(dirname "$0")/script-env.sh"

export HOSTED_CLUSTER_NAMESPACE=${FLEET_NAMESPACE:-fleet}
ns=$HOSTED_CLUSTER_NAMESPACE
read -r -a policies <<<"${FLEET_POLICIES:-HighlyAvailable SingleReplica}"
clusters=(fleet-a fleet-b)
sets=(FA FB)
out=${HCP_ETCD_E2E_DIR:-$repo/tests/output/e2e}
mkdir -p "$out"
work=$(mktemp -d "$out/fleet.XXXXXX")
log() { printf '%s [fleet] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { log "FAIL: $*"; exit 1; }

cleanup() {
  local rc=$?
  [ -z "${proxy_pid:-}" ] || kill "$proxy_pid" 2>/dev/null || true
  if [ "${FLEET_KEEP:-0}" = 1 ]; then
    log "FLEET_KEEP=1: kept ${clusters[*]} in $ns and $work"
  else
    log "removing the control planes"
    for c in "${clusters[@]}"; do tests/cluster/hcp.sh down "$c" >"$work/down-$c.log" 2>&1 || log "warning: hcp.sh down $c failed (see $work/down-$c.log)"; done
    # The HostedCluster namespace is ours alone: remove it once empty.
    if [ -z "$("$KUBECTL" -n "$ns" get hostedclusters -o name 2>/dev/null)" ]; then
      "$KUBECTL" delete namespace "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
  fi
  if [ $rc -eq 0 ]; then log "PASSED in $((SECONDS - start)) s"; else log "FAILED (rc $rc) after $((SECONDS - start)) s"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. two miniature hosted control planes, in parallel, then a known data set in each
log "bringing up ${clusters[*]} (${policies[*]}) in namespace $ns"
pids=()
for i in 0 1; do
  tests/cluster/hcp.sh up "${clusters[$i]}" "${policies[$i]:-SingleReplica}" >"$work/up-${clusters[$i]}.log" 2>&1 &
  pids+=($!)
done
for i in 0 1; do
  wait "${pids[$i]}" || { tail -n 30 "$work/up-${clusters[$i]}.log"; fail "hcp.sh up ${clusters[$i]}"; }
done
log "control planes ready after $((SECONDS - start)) s"
# fleet-a encrypts its Secrets (spec.secretEncryption, a key Secret owned by the HostedCluster): its key goes
# with the backup only encrypted (to the store's age recipient, by default), and its restore checks the key's
# fingerprint against the snapshot's sidecar. The key is printable so that the scans below can look for it.
key=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
uid=$("$KUBECTL" -n "$ns" get hostedcluster "${clusters[0]}" -o jsonpath='{.metadata.uid}')
"$KUBECTL" apply -f - >/dev/null <<EOF2 || fail "create ${clusters[0]}'s encryption key"
{"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
 "metadata": {"name": "${clusters[0]}-etcd-encryption-key", "namespace": "$ns",
              "ownerReferences": [{"apiVersion": "hypershift.openshift.io/v1beta1", "kind": "HostedCluster", "name": "${clusters[0]}", "uid": "$uid"}]},
 "data": {"key": "$(printf %s "$key" | base64 -w0)"}}
EOF2
"$KUBECTL" -n "$ns" patch hostedcluster "${clusters[0]}" --type=merge \
  -p "{\"spec\": {\"secretEncryption\": {\"type\": \"aescbc\", \"aescbc\": {\"activeKey\": {\"name\": \"${clusters[0]}-etcd-encryption-key\"}}}}}" >/dev/null \
  || fail "patch ${clusters[0]}'s secretEncryption"
for i in 0 1; do
  tests/tools/etcd-data seed --namespace "$ns-${clusters[$i]}" --set "${sets[$i]}" --keys 50 >"$work/seed-${clusters[$i]}.log" 2>&1 \
    || { cat "$work/seed-${clusters[$i]}.log"; fail "seed ${clusters[$i]}"; }
done

# 2. the inventory
inv=$work/hosted_clusters.yml
printf -- '---\nplugin: hcp.etcd.hosted_clusters\nnamespaces: [%s]\n' "$ns" >"$inv"
log "ansible-inventory -i $inv --graph"
ansible-inventory -i "$inv" --graph | tee "$work/graph.txt"
ansible-inventory -i "$inv" --list >"$work/inventory.json"
python3 - "$work/inventory.json" "$ns" "${clusters[0]}:${policies[0]}" "${clusters[1]}:${policies[1]:-SingleReplica}" <<'PY'
import json, sys
inv = json.load(open(sys.argv[1]))
ns = sys.argv[2]


def plain(v):
    return v.get("__ansible_unsafe", v) if isinstance(v, dict) else v


hostvars = inv["_meta"]["hostvars"]
want = [a.split(":") for a in sys.argv[3:]]
assert sorted(hostvars) == sorted("%s/%s" % (ns, c) for c, _ in want), sorted(hostvars)
for c, policy in want:
    hv = dict((k, plain(v)) for k, v in hostvars["%s/%s" % (ns, c)].items())
    assert hv["cluster_name"] == c and hv["hosted_cluster_namespace"] == ns, hv
    assert hv["control_plane_namespace"] == "%s-%s" % (ns, c), hv
    assert hv["availability_policy"] == policy and hv["etcd_management_type"] == "Managed", hv
    assert hv["ansible_connection"] == "local", hv
    for group in ("hosted_clusters", "ns_" + ns.replace("-", "_"), "policy_" + policy.lower(), "etcd_managed"):
        assert "%s/%s" % (ns, c) in inv[group]["hosts"], (group, inv.get(group))
print("inventory: %d hosts, host vars and groups as expected" % len(hostvars))
PY

# 3. ONE playbook run over the whole inventory, each backup also copied to the S3 store, compressed and
# encrypted to an age recipient made here (its identity file 0600 in the work directory)
log "the S3 store: tests/cluster/s3.sh up"
. "$(tests/cluster/s3.sh up 2>"$work/s3-up.log" || { cat "$work/s3-up.log"; fail "s3.sh up"; })"
store=s3://$HCP_ETCD_S3_BUCKET/fleet-$(date +%s)-$$
recipient=$(umask 077; python3 -c 'import sys; from pyrage import x25519; i = x25519.Identity.generate(); open(sys.argv[1], "w").write("%s\n" % i); print(i.to_public())' "$work/age.key")
backups=$work/backups
log "ansible-playbook playbooks/backup.yml -i $inv -e hcp_targets=all -e backup_store=$store -e backup_store_age_recipients=[$recipient] --forks 2"
t0=$SECONDS
set +e
ansible-playbook playbooks/backup.yml -i "$inv" -e hcp_targets=all -e "backup_dir=$backups" -e "backup_store=$store" \
  -e "{\"backup_store_age_recipients\": [\"$recipient\"]}" --forks 2 >"$work/backup.log" 2>&1
rc=$?
set -e
cp "$work/backup.log" "$out/fleet-backup.log"
grep -E '^(PLAY RECAP|[a-z0-9./-]+ +: ok=)' "$work/backup.log" || true
[ $rc -eq 0 ] || { tail -n 60 "$work/backup.log"; fail "backup playbook rc=$rc"; }
log "fleet backup: $((SECONDS - t0)) s for ${#clusters[@]} clusters"
grep -q "$ns/${clusters[0]} *: ok=[0-9]* .*failed=0" "$work/backup.log" && grep -q "$ns/${clusters[1]} *: ok=[0-9]* .*failed=0" "$work/backup.log" \
  || fail "the recap does not show both hosts without failure"
echo "--- backup summaries"
grep -hE '"backup of |"revision |"taken from ' "$work/backup.log" | sed -E 's/^ *"//; s/",?$//'

# 4. every backup is there, whole, and belongs to its cluster
for c in "${clusters[@]}"; do
  mapfile -t snaps < <(find "$backups/$ns/$c" -name etcd-snapshot.db 2>/dev/null)
  [ ${#snaps[@]} -eq 1 ] || fail "$c: expected 1 snapshot under $backups/$ns/$c, found ${#snaps[@]}"
  snap=${snaps[0]}
  [ -s "$snap.json" ] || fail "$c: sidecar $snap.json missing"
  python3 - "$snap" "$c" "$ns" <<'PY' || fail "$c: snapshot check"
import hashlib, json, os, stat, sys
snap, name, ns = sys.argv[1:]
side = json.load(open(snap + ".json"))
h = hashlib.sha256()
with open(snap, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
size = os.path.getsize(snap)
assert h.hexdigest() == side["sha256"], "sha256 %s != sidecar %s" % (h.hexdigest(), side["sha256"])
assert size == side["size"], "size %d != sidecar %d" % (size, side["size"])
assert side["cluster_name"] == name and side["hosted_cluster_namespace"] == ns, side
assert side["namespace"] == "%s-%s" % (ns, name), side
assert isinstance(side["revision"], int) and side["revision"] > 0, side
assert stat.S_IMODE(os.stat(snap).st_mode) == 0o600, oct(os.stat(snap).st_mode)
print("verified %s: %d bytes, sha256 %s = sidecar, revision %d, from %s" % (snap.split("/backups/")[-1], size, side["sha256"][:16], side["revision"], side["member"]))
PY
done
# Two different clusters, two different snapshots.
a=$(find "$backups/$ns/${clusters[0]}" -name etcd-snapshot.db.json -exec python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha256"])' {} \;)
b=$(find "$backups/$ns/${clusters[1]}" -name etcd-snapshot.db.json -exec python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha256"])' {} \;)
[ "$a" != "$b" ] || fail "both clusters produced the same snapshot"
log "fleet wall time so far: $((SECONDS - start)) s"

# 5. the store: one complete backup per cluster, encrypted: no piece of a seeded value in any stored object
# (while the plain local snapshot holds it: the check can fail), and the stored sidecar records the encoding
s3() { python3 "$repo/tests/tools/s3_objects.py" "$@"; }
kubectl_ns_pods() { "$KUBECTL" -n "$1" get pods -l "$2" -o name; }
for i in 0 1; do
  c=${clusters[$i]}
  snap=$(find "$backups/$ns/$c" -name etcd-snapshot.db)
  name=$(basename "$(dirname "$snap")")
  s3 expect-backups "$store/$ns/$c" "$name" || fail "$c: the store does not hold exactly backup $name"
  marker=$(python3 -c 'import hashlib, sys; print(hashlib.sha256(("%s/2/0" % sys.argv[1]).encode()).hexdigest()[:48])' "${sets[$i]}")
  grep -a -q -F "$marker" "$snap" || fail "$c: the local snapshot lacks the seeded value $marker (the check below could not fail)"
  for f in etcd-snapshot.db hostedcluster.yaml nodepools.yaml; do
    s3 get "$store/$ns/$c/$name/$f" "$work/stored-$f"
    head -c 21 "$work/stored-$f" | grep -q '^age-encryption.org/v1' || fail "$c: $f is not stored age-encrypted"
    ! grep -a -q -F "$marker" "$work/stored-$f" || fail "$c: the stored $f holds the seeded value in clear"
  done
  s3 get "$store/$ns/$c/$name/etcd-snapshot.db.json" "$work/stored-sidecar.json"
  python3 - "$work/stored-sidecar.json" "$snap" "$recipient" "$work/stored-etcd-snapshot.db" <<'PY' || fail "$c: stored sidecar"
import hashlib, json, os, sys
side, snap, recipient, stored = sys.argv[1:]
s = json.load(open(side))
plain = hashlib.sha256(open(snap, "rb").read()).hexdigest()
assert s["sha256"] == plain, (s["sha256"], plain)
assert s["store"]["encoding"] == "zstd+age" and s["store"]["recipients"] == [recipient], s["store"]
body = open(stored, "rb").read()
assert s["store"]["files"]["etcd-snapshot.db"] == {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}, s["store"]
print("stored sidecar: plain sha256 %s, %s, %d bytes stored for %d" % (plain[:16], s["store"]["encoding"], len(body), os.path.getsize(snap)))
PY
  log "store: $c's backup $name is in $store, encrypted (no seeded value in clear), sidecar binds it to the local file"
done
# fleet-a's encryption key: encrypted beside its snapshot (never in clear), in the store too, and no byte of it,
# raw or base64, in any local backup file, stored object or output
a_dir=$(dirname "$(find "$backups/$ns/${clusters[0]}" -name etcd-snapshot.db)")
[ -s "$a_dir/encryption-key.yaml.age" ] && [ ! -e "$a_dir/encryption-key.yaml" ] \
  || fail "${clusters[0]}: expected encryption-key.yaml.age and no encryption-key.yaml in $a_dir"
[ "$(stat -c %a "$a_dir/encryption-key.yaml.age")" = 600 ] || fail "${clusters[0]}: encryption-key.yaml.age is not 0600"
[ "$(python3 -c 'import sys, yaml, base64; from pyrage import decrypt, x25519
i = [x25519.Identity.from_str(l.strip()) for l in open(sys.argv[2]) if l.startswith("AGE-SECRET-KEY-")]
print(base64.b64decode(yaml.safe_load(decrypt(open(sys.argv[1], "rb").read(), i))["data"]["key"]).decode())' \
  "$a_dir/encryption-key.yaml.age" "$work/age.key")" = "$key" ] || fail "${clusters[0]}: encryption-key.yaml.age does not decrypt to the cluster's key"
s3 get "$store/$ns/${clusters[0]}/$(basename "$a_dir")/encryption-key.yaml.age" "$work/stored-key" \
  || fail "${clusters[0]}: the store lacks encryption-key.yaml.age"
! grep -rlaF -e "$key" -e "$(printf %s "$key" | base64 -w0)" "$backups" "$work"/stored-* "$work/backup.log" \
  || fail "${clusters[0]}: the encryption key in clear in the files above"
log "store: ${clusters[0]}'s encryption key is saved only encrypted (locally and in the store), no byte of it in clear"

# 6. refusals before anything is written: wrong credentials, a missing bucket
b_count() { find "$backups/$ns/${clusters[1]}" -mindepth 1 -maxdepth 1 | wc -l; }
before=$(b_count)
refused() {  # WHAT EXPECTED-MESSAGE ansible-playbook args...
  local what=$1 expect=$2; shift 2
  set +e; "$@" >"$work/refused.log" 2>&1; local rc=$?; set -e
  [ $rc -ne 0 ] || fail "$what: the backup was not refused"
  grep -q -- "$expect" "$work/refused.log" || { tail -n 20 "$work/refused.log"; fail "$what: no message '$expect'"; }
  [ "$(b_count)" = "$before" ] || fail "$what: a backup directory was written although the store was refused"
  log "refused, nothing written: $what ($(grep -o -- "$expect[^\"]*" "$work/refused.log" | head -1 | cut -c1-120))"
}
backup_b=(ansible-playbook playbooks/backup.yml -e cluster_name="${clusters[1]}" -e hosted_cluster_namespace="$ns" -e "backup_dir=$backups")
AWS_SECRET_ACCESS_KEY=wrong-$AWS_SECRET_ACCESS_KEY refused "wrong secret key" "refused the credentials" "${backup_b[@]}" -e "backup_store=$store"
refused "missing bucket" "bucket no-such-bucket-$$ does not exist" "${backup_b[@]}" -e "backup_store=s3://no-such-bucket-$$/x"

# 7. a connection cut mid-upload: the backup fails and the store lists no new backup
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 "$repo/tests/tools/s3_objects.py" cut-proxy "$port" "${AWS_ENDPOINT_URL##*//}" 20000 >"$work/proxy.log" 2>&1 &
proxy_pid=$!
sleep 0.5
set +e
AWS_ENDPOINT_URL=https://127.0.0.1:$port "${backup_b[@]}" -e "backup_store=$store" >"$work/cut.log" 2>&1
rc=$?
set -e
kill "$proxy_pid" 2>/dev/null || true; proxy_pid=
[ $rc -ne 0 ] || fail "a backup whose upload was cut reported success"
grep -q "cannot be reached while uploading\|while uploading" "$work/cut.log" || { tail -n 20 "$work/cut.log"; fail "the cut upload's failure does not name the upload"; }
s3 expect-backups "$store/$ns/${clusters[1]}" "$(basename "$(dirname "$(find "$backups/$ns/${clusters[1]}" -name etcd-snapshot.db | sort | head -1)")")" \
  || fail "after the cut upload the store lists another backup than the first one"
log "cut upload: the backup failed ($(grep -c . "$work/proxy.log") connection(s) cut) and the store still lists only the first backup"

# 8. retention in the bucket: backup_keep=1 leaves the newest complete backup only
"${backup_b[@]}" -e "backup_store=$store" -e backup_keep=1 >"$work/keep.log" 2>&1 || { tail -n 30 "$work/keep.log"; fail "backup with backup_keep=1"; }
newest=$(basename "$(dirname "$(find "$backups/$ns/${clusters[1]}" -name etcd-snapshot.db.json | sort | tail -1)")")
s3 expect-backups "$store/$ns/${clusters[1]}" "$newest" || fail "retention: the store holds more than the newest backup $newest"
log "retention: the store holds only ${clusters[1]}'s newest backup $newest"

# 9. the weekly drill of awx/configure.yml: ONE run over the inventory drills each cluster's newest backup in the
# store (fleet-a's encrypted: the identity file given as the AWX credential "age identity (hcp.etcd)" gives it,
# in HCP_ETCD_AGE_IDENTITY_FILE), each in a scratch pod; revision, key count and hashkv must equal what the
# member served at the backup; the verdicts are stored beside the backups and listed; no scratch pod is left.
HCP_ETCD_AGE_IDENTITY_FILE=$work/age.key ansible-playbook playbooks/drill.yml -i "$inv" -e hcp_targets=all -e "backup_store=$store" \
  -e "drill_work_dir=$work/drill/{{ inventory_hostname }}" --forks 2 >"$work/drill.log" 2>&1 || { tail -n 40 "$work/drill.log"; fail "drill"; }
cp "$work/drill.log" "$out/fleet-drill.log"
a_newest=$(basename "$(dirname "$(find "$backups/$ns/${clusters[0]}" -name etcd-snapshot.db | sort | tail -1)")")
for c in "${clusters[@]}"; do
  line=$(grep -o "drill of $work/drill/$ns/$c/[^\"]*" "$work/drill.log" | tail -1)
  case $line in
    *"revision "*" = sidecar, keys "*" = sidecar, hashkv "*" = sidecar"*": OK") log "drill $c: $line" ;;
    *) fail "the drill of $c did not compare revision, keys and hashkv with the sidecar: $line" ;;
  esac
  if [ "$c" = "${clusters[0]}" ]; then drilled=$a_newest; else drilled=$newest; fi
  s3 get "$store/$ns/$c/$drilled/drill.json" "$work/drill-$c.json"
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["verdict"] == "OK" and len(d["compared"]) == 3, d' "$work/drill-$c.json" \
    || fail "the drill's verdict is not stored beside $c's backup $drilled"
  [ -z "$(kubectl_ns_pods "$ns-$c" hcp.etcd/role=drill)" ] || fail "the drill's scratch pod was left behind in $ns-$c"
done
ansible-playbook playbooks/list.yml -e cluster_name="${clusters[1]}" -e hosted_cluster_namespace="$ns" -e "backup_store=$store" >"$work/list.log" 2>&1 \
  || { tail -n 20 "$work/list.log"; fail "list"; }
grep -q "$newest: revision .*stored zstd in .*drill OK at " "$work/list.log" || { grep msg "$work/list.log"; fail "the listing does not show the drill's verdict"; }
log "drill: both clusters' newest backups drilled in one run over the inventory, verdicts stored in the bucket and listed, scratch pods removed"

# 10. restore fleet-a from its s3:// URL, the local copy gone, verified on every member
a_name=$(basename "$(dirname "$(find "$backups/$ns/${clusters[0]}" -name etcd-snapshot.db)")")
url=$store/$ns/${clusters[0]}/$a_name/etcd-snapshot.db
rm -rf "$backups/$ns/${clusters[0]}"
tests/tools/etcd-data delete --namespace "$ns-${clusters[0]}" --set "${sets[0]}" --every 4 >"$work/damage.log" 2>&1 || { cat "$work/damage.log"; fail "damage"; }
log "restore ${clusters[0]} from $url"
set +e
ansible-playbook playbooks/restore.yml -e cluster_name="${clusters[0]}" -e hosted_cluster_namespace="$ns" -e "snapshot=$url" \
  -e confirm=true -e "restore_work_dir=$work/restore" >"$work/restore.log" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] && grep -q "is encrypted to age recipient" "$work/restore.log" || { tail -n 30 "$work/restore.log"; fail "a restore of an encrypted backup without the identity was not refused"; }
log "refused: the restore of an encrypted backup without its identity"
ansible-playbook playbooks/restore.yml -e cluster_name="${clusters[0]}" -e hosted_cluster_namespace="$ns" -e "snapshot=$url" \
  -e confirm=true -e "restore_work_dir=$work/restore" -e "backup_store_age_identity_file=$work/age.key" >"$work/restore.log" 2>&1 \
  || { tail -n 40 "$work/restore.log"; fail "restore from the store"; }
cp "$work/restore.log" "$out/fleet-restore-from-store.log"
members=3; [ "${policies[0]}" = HighlyAvailable ] || members=1
tests/tools/etcd-data verify --namespace "$ns-${clusters[0]}" --expect "${sets[0]}" --keys 50 --members "$members" | tee "$work/verify.log" \
  || fail "${clusters[0]} restored from the store: data not verified on every member"
log "restored ${clusters[0]} from the store: $(grep -c '^verify etcd-' "$work/verify.log") member(s) verified"
