#!/usr/bin/env bash
# The hermetic cluster's volume provisioner: every PVC of StorageClass `standard` gets a volume of
# exactly the size it asks for, an ext4 filesystem in a sparse image file, loop-mounted on the host
# and given to the pod as a hostPath PV. Free space, a full disk and `status.capacity` are then the
# volume's own, as on real block storage, not the host disk's (the in-tree hostpath provisioner hands
# out directories of the host disk). A released PV is unmounted and its image removed.
#
# Run by `cluster.sh up` as the daemon `loop-volumes`; it reacts to PVC and PV watch events and
# reconciles every 30 s in any case (lib/reconcile-loop.sh). State: $STATE/volumes/<pv>.img and the mount point <pv>/.
set -uo pipefail
# shellcheck source=common.sh
. "$(cd "$(dirname "$0")" && pwd)/common.sh"
# shellcheck source=reconcile-loop.sh
. "$CLUSTER_LIB/reconcile-loop.sh"

k() { "$KUBECTL" --kubeconfig "$KUBECONFIG_ADMIN" --request-timeout=30s "$@"; }   # a stuck request must not stall it
PROVISIONER=hcp-etcd.test/loop-volume
VOLUMES=$STATE/volumes
mkdir -p "$VOLUMES"

# quantity_bytes <quantity>: bytes of a Kubernetes quantity (Ki/Mi/Gi/Ti, k/M/G/T, plain)
quantity_bytes() {
  case $1 in
    *i) numfmt --from=iec-i "$1" ;;
    *[kMGT]) numfmt --from=si "${1/k/K}" ;;
    *) echo "$1" ;;
  esac
}

provision() {
  local ns=$1 name=$2 uid=$3 size=$4 mode=$5
  local pv=pvc-$uid bytes
  bytes=$(quantity_bytes "$size") || { log "volumes: $ns/$name: cannot read size $size"; return 1; }
  local img=$VOLUMES/$pv.img dir=$VOLUMES/$pv
  if ! mountpoint -q "$dir"; then
    rm -f "$img"
    truncate -s "$bytes" "$img"
    # -m 0: no blocks reserved for root (etcd runs as root here); lazy init: a sparse file stays sparse
    mkfs.ext4 -q -F -m 0 -E lazy_itable_init=1,lazy_journal_init=1,nodiscard "$img" || return 1
    mkdir -p "$dir"
    mount -o loop "$img" "$dir" || return 1
    # as kubelet leaves a block volume for fsGroup 1001 (the etcd pods'): group 1001, group-writable,
    # setgid (hostPath volumes get no fsGroup treatment from kubelet, so the provisioner does it)
    chown 0:1001 "$dir" && chmod 2775 "$dir"
  fi
  k apply -f - >/dev/null <<EOF || return 1
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $pv
  annotations: {pv.kubernetes.io/provisioned-by: $PROVISIONER}
spec:
  capacity: {storage: "$size"}
  accessModes: [$mode]
  persistentVolumeReclaimPolicy: Delete
  storageClassName: standard
  volumeMode: Filesystem
  hostPath: {path: "$dir", type: Directory}
  claimRef: {namespace: "$ns", name: "$name", uid: "$uid"}
EOF
  log "volumes: $ns/$name: $size ext4 on $(findmnt -n -o SOURCE "$dir") at $dir"
}

release() {
  local pv=$1 dir=$VOLUMES/$1
  if mountpoint -q "$dir"; then umount "$dir" || return 1; fi   # the loop device detaches itself (autoclear)
  rm -f "$VOLUMES/$pv.img"; rmdir "$dir" 2>/dev/null
  k delete pv "$pv" --wait=false >/dev/null 2>&1 || true
  log "volumes: $pv released: unmounted and removed"
}

reconcile() {
  local ns name uid class size mode phase pv by
  while read -r ns name uid class size mode; do
    [ "$class" = standard ] || continue
    k get pv "pvc-$uid" >/dev/null 2>&1 && continue
    provision "$ns" "$name" "$uid" "$size" "$mode" || log "volumes: $ns/$name: provisioning failed (retried)"
  done < <(k get pvc -A -o jsonpath='{range .items[?(@.status.phase=="Pending")]}{.metadata.namespace} {.metadata.name} {.metadata.uid} {.spec.storageClassName} {.spec.resources.requests.storage} {.spec.accessModes[0]}{"\n"}{end}')
  while read -r pv phase by; do
    [ "$by" = "$PROVISIONER" ] && [ "$phase" = Released ] || continue
    release "$pv" || log "volumes: $pv: release failed (retried)"
  done < <(k get pv -o jsonpath='{range .items[*]}{.metadata.name} {.status.phase} {.metadata.annotations.pv\.kubernetes\.io/provisioned-by}{"\n"}{end}')
}

log "volumes: provisioner $PROVISIONER, images in $VOLUMES"
reconcile_on_events 30 pvc pv
