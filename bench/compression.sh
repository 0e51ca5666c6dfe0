#!/usr/bin/env bash
# The backup store's encoding measured on real Kubernetes objects (make bench-compression; the last part of
# make bench). Writes bench/compression.md (BENCH_OUT to put it elsewhere).
#
# The data set: the hermetic cluster's own etcd (what its kube-apiserver stores: the test runs' pods, events,
# leases, CRDs...) plus BENCH_OBJECTS (4000) objects shaped like a hosted cluster's (bench/k8s_objects.py:
# ConfigMaps, Secrets of random key material, Deployments, Services) created through kube-apiserver in a
# scratch namespace, so that kube-apiserver encodes them as it does a real cluster's (protobuf). Its etcd is
# saved with `etcdctl snapshot save`, the namespace removed, and bench/compression.py compares the snapshot
# with random bytes of the same size (zstd, zstd+age, age; median of BENCH_REPS, 3).
. "$(dirname "$0")/env.sh"
count=${BENCH_OBJECTS:-4000}
ns=hcp-etcd-bench-objects
work=$repo/.cache/bench
mkdir -p "$work"
log() { printf '%s [compression] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
"$KUBECTL" delete namespace "$ns" --ignore-not-found --wait=true >/dev/null
"$KUBECTL" create namespace "$ns" >/dev/null
trap '"$KUBECTL" delete namespace "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true' EXIT
"$repo/.venv/bin/python" "$here/k8s_objects.py" "$ns" "$count" >"$work/objects.json"
t=$SECONDS
"$KUBECTL" create -f "$work/objects.json" >/dev/null
log "created $count objects in $ns through kube-apiserver in $((SECONDS - t)) s"
rm -f "$work/k8s-objects.db"
"$ETCDCTL" --endpoints http://127.0.0.1:12379 snapshot save "$work/k8s-objects.db" >/dev/null 2>&1
keys=$("$ETCDCTL" --endpoints http://127.0.0.1:12379 get / --prefix --keys-only | grep -c .)
objects=$("$ETCDCTL" --endpoints http://127.0.0.1:12379 get "/registry/" --prefix --keys-only | grep -c "/$ns/" || true)
out=${BENCH_OUT:-$here}
mkdir -p "$out"
{
  "$repo/.venv/bin/python" "$here/compression.py" "$work/k8s-objects.db" "${BENCH_REPS:-3}"
  printf '\nThe snapshot: the hermetic cluster'"'"'s etcd saved with `etcdctl snapshot save`, as a backup saves a member: %d keys,\n' "$keys"
  printf '%d of them in the scratch namespace (the %d objects of bench/k8s_objects.py, created through kube-apiserver:\n' "$objects" "$count"
  printf 'ConfigMaps, Secrets of random key material, Deployments, Services; and what the cluster made for them, such as\n'
  printf 'endpoints). The file also holds the free pages of a live bbolt database (older revisions, not defragmented), as\n'
  printf 'every online backup does; they compress to almost nothing. %s, %s cores.\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)"
} | tee "$out/compression.md"
