#!/usr/bin/env bash
# The bare online backup the benchmark compares playbooks/backup.yml with:
# etcdctl snapshot save in etcd-0, kubectl cp out, sha256sum, remove the copy in the pod.
#   bare-backup.sh CONTROL_PLANE_NAMESPACE OUT_FILE
set -euo pipefail
ns=$1 out=$2
K=${KUBECTL:?}
$K exec -n "$ns" -c etcd etcd-0 -- env ETCDCTL_API=3 etcdctl \
  --cacert /etc/etcd/tls/etcd-ca/ca.crt --cert /etc/etcd/tls/client/etcd-client.crt \
  --key /etc/etcd/tls/client/etcd-client.key --endpoints=https://localhost:2379 \
  snapshot save /var/lib/bare-snapshot.db >/dev/null
$K cp -c etcd "$ns/etcd-0:/var/lib/bare-snapshot.db" "$out" 2>/dev/null
sha256sum "$out" > "$out.sha256"
$K exec -n "$ns" -c etcd etcd-0 -- rm -f /var/lib/bare-snapshot.db
