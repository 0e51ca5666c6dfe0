#!/usr/bin/env bash
# Backup to and restore from the S3 store (the MinIO of tests/cluster/s3.sh, TLS) with each store encoding, on
# real Kubernetes objects and on random bytes: the whole playbooks, side by side in one run (make bench-store).
#
# The objects: BENCH_OBJECTS (8000) objects of bench/k8s_objects.py created through the local cluster's
# kube-apiserver in a scratch namespace, read back from its etcd (all of /registry/) as kube-apiserver stored them
# (protobuf), packed into values of up to 512 KiB (one put each) and copied into the control plane's etcd until it
# holds STORE_BENCH_MIB of values (etcd-data seed --objects; a copy is larger than zstd's window).
# Random: the same size of random 512 KiB values. Per data set one control plane (HighlyAvailable); per
# repetition and encoding (alternating): playbooks/backup.yml with the store, then playbooks/restore.yml from the
# s3:// URL (the local copy not used: restore_work_dir is empty), every member then proven by data
# (etcd-data digest equal on all members and equal to before the backup).
#
# Env: STORE_BENCH_MIB (256), STORE_BENCH_REPS (2), STORE_BENCH_DATA ("objects random"),
#      STORE_BENCH_ENCODINGS ("none zstd zstd+age"), BENCH_OUT (bench/) for store-backup.{md,jsonl}.
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
mib=${STORE_BENCH_MIB:-256} reps=${STORE_BENCH_REPS:-2} datasets=${STORE_BENCH_DATA:-objects random}
encodings=${STORE_BENCH_ENCODINGS:-none zstd zstd+age} count=${BENCH_OBJECTS:-8000}
out=${BENCH_OUT:-$here}
W=$(mktemp -d /tmp/hcp-etcd-store-backup.XXXXXX)
results=$W/results.jsonl
log() { printf '%s [store-backup] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
planes=()
cleanup() {
  local p; for p in "${planes[@]}"; do tests/cluster/hcp.sh down "$p" >/dev/null 2>&1 || true; done
  "$KUBECTL" delete namespace hcp-etcd-bench-objects --ignore-not-found --wait=false >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT
tests/cluster/s3.sh up >/dev/null
# shellcheck disable=SC1090
. "$(tests/cluster/s3.sh env)"
store=s3://$HCP_ETCD_S3_BUCKET/bench-store-$(date -u +%Y%m%dT%H%M%SZ)
recipient=$(umask 077; python3 -c 'import sys; from pyrage import x25519; i = x25519.Identity.generate(); open(sys.argv[1], "w").write("%s\n" % i); print(i.to_public())' "$W/age.key")

if [[ " $datasets " == *" objects "* ]]; then
  ns=hcp-etcd-bench-objects
  "$KUBECTL" delete namespace "$ns" --ignore-not-found --wait=true >/dev/null
  "$KUBECTL" create namespace "$ns" >/dev/null
  python3 "$here/k8s_objects.py" "$ns" "$count" >"$W/objects.json"
  "$KUBECTL" create -f "$W/objects.json" >/dev/null
  "$ETCDCTL" --endpoints http://127.0.0.1:12379 get "/registry/" --prefix -w json >"$W/registry.json"
  "$KUBECTL" delete namespace "$ns" --wait=false >/dev/null
  log "the objects: $count created through kube-apiserver; $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["kvs"]))' "$W/registry.json") keys read back from its etcd"
fi

median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print("%.1f (%.1f-%.1f)" % (statistics.median(v), min(v), max(v)))' "$@"; }
# every member's digest of /hcp-bulk/ without its name and revision (a restore moves the revision on): one line when equal
digest() { tests/tools/etcd-data digest --namespace "clusters-$1" --prefix /hcp-bulk/ | sed -E 's/^digest etcd-[0-9]+: //; s/ \(revision.*//' | sort -u; }

for data in $datasets; do
  name=bench-store-$data
  planes+=("$name")
  HCP_DATA_SIZE=$((mib * 8 / 1024 + 2))Gi tests/cluster/hcp.sh up "$name" >"$W/up-$name.log" 2>&1 || { cat "$W/up-$name.log"; exit 1; }
  seed=(--size-mib "$mib"); [ "$data" = objects ] && seed+=(--objects "$W/registry.json")
  tests/tools/etcd-data seed --namespace "clusters-$name" "${seed[@]}" | tee -a "$W/seed.log" >&2
  sleep 20  # the followers apply the bulk writes
  digest "$name" >"$W/digest-$name.before"
  [ "$(wc -l <"$W/digest-$name.before")" = 1 ] || { cat "$W/digest-$name.before"; log "members differ before the bench"; exit 1; }
  for rep in $(seq 1 "$reps"); do
    for enc in $encodings; do
      comp=zstd; [ "$enc" = none ] && comp=none
      keys='{"backup_store_age_recipients": []}'; [ "$enc" = zstd+age ] && keys="{\"backup_store_age_recipients\": [\"$recipient\"]}"
      brc=0 rrc=0 t1=$(date +%s.%N)
      ansible-playbook playbooks/backup.yml -e cluster_name="$name" -e "backup_dir=$W/backups" -e backup_keep=1 \
        -e "backup_store=$store/$data-$enc" -e "backup_store_compression=$comp" -e "$keys" >"$W/backup.log" 2>&1 || brc=$?
      t2=$(date +%s.%N)
      url=$(grep -oE "restore with -e snapshot=s3://[^) ]+" "$W/backup.log" | tail -n1 | cut -d= -f2 || true)
      snap=$(grep -oE '"revision [0-9]+, [0-9]+ bytes' "$W/backup.log" | tail -n1 | awk '{print $3}' || true)
      stored=$(grep -oE "\(${enc//+/\\+}, [0-9]+ bytes" "$W/backup.log" | tail -n1 | awk '{print $2}' || true)
      rm -rf "$W/backups" "$W/restore"
      t3=$(date +%s.%N)
      ansible-playbook playbooks/restore.yml -e cluster_name="$name" -e "snapshot=$url" -e confirm=true \
        -e "restore_work_dir=$W/restore" -e "backup_store_age_identity_file=$W/age.key" >"$W/restore.log" 2>&1 || rrc=$?
      t4=$(date +%s.%N)
      digest "$name" >"$W/digest.after"
      if [ $brc -eq 0 ] && [ $rrc -eq 0 ] && cmp -s "$W/digest.after" "$W/digest-$name.before"; then ok=OK; else ok=FAIL; fi
      [ $brc -eq 0 ] || tail -n 20 "$W/backup.log" >&2
      [ $rrc -eq 0 ] || tail -n 20 "$W/restore.log" >&2
      b=$(python3 -c "print(round($t2-$t1,2))") r=$(python3 -c "print(round($t4-$t3,2))")
      printf '{"data": "%s", "encoding": "%s", "rep": %d, "snapshot": %s, "stored": %s, "backup_s": %s, "restore_s": %s, "verify": "%s"}\n' \
        "$data" "$enc" "$rep" "${snap:-0}" "${stored:-0}" "$b" "$r" "$ok" >>"$results"
      log "$data $enc rep $rep: backup ${b}s (rc $brc, ${stored:-?} of ${snap:-?} bytes stored), restore from the store ${r}s (rc $rrc), every member: $ok"
    done
  done
  tests/cluster/hcp.sh down "$name" >/dev/null 2>&1 || true
done

mkdir -p "$out"
cp "$results" "$out/store-backup.jsonl"
python3 "$here/store_backup_report.py" "$results" "$mib" "$reps" "$count" | tee "$out/store-backup.md"
