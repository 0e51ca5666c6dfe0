#!/usr/bin/env bash
# A hermetic single-node Kubernetes cluster for the hcp.etcd tests, built from source and run as
# plain host processes (no systemd, no Docker, no image pulls). In the spirit of kind's create
# actions: `up` is a list of small named steps, each idempotent, logged and timed.
#
#   cluster.sh up          create or resume the cluster; exits quickly if it already runs
#   cluster.sh down        stop everything `up` started, unmount, remove the state dir
#   cluster.sh status      components (PID), node readiness, versions
#   cluster.sh kubeconfig  print the admin kubeconfig path (nothing else on stdout)
#   cluster.sh smoke       acceptance check on the running cluster (pods, PVCs, DNS, Services, exec, cp)
#
# State: ${HCP_ETCD_CLUSTER_DIR:-/var/tmp/hcp-etcd-cluster}. See tests/cluster/README.md.
set -euo pipefail
# shellcheck source=lib/common.sh
. "$(cd "$(dirname "$0")" && pwd)/lib/common.sh"
# shellcheck source=lib/pki.sh
. "$CLUSTER_LIB/pki.sh"
# shellcheck source=lib/smoke.sh
. "$CLUSTER_LIB/smoke.sh"

PACKAGES=(containerd runc containernetworking-plugins iptables debootstrap openssl conntrack socat iproute2 kmod curl ca-certificates e2fsprogs)

# ---- up steps ----------------------------------------------------------------------------------

step_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then log "packages: all installed"; return; fi
  log "packages: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

step_binaries() {
  # Meanwhile, the images that need no built binary (pause, healthz, the Debian rootfs, etcd 3.4): on a
  # fresh machine their debootstrap then waits on the network beside the compiles, not after them. The
  # images step waits for this (images.sh holds its lock) and redoes whatever it did not finish.
  "$CLUSTER_HOME/images.sh" base &
  "$CLUSTER_HOME/build-binaries.sh" kubernetes etcd coredns crictl
  local b
  for b in "$K8S_BIN"/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy,kubectl} \
           "$ETCD_BIN/etcd" "$COREDNS_BIN/coredns" "$CRICTL"; do
    [ -x "$b" ] || die "missing binary $b (see tests/cluster/build-binaries.sh)"
  done
}

step_pki() {
  local p
  if [ ! -f "$STATE/created-host-paths" ]; then
    mkdir -p "$STATE"
    for p in "${HARDCODED_HOST_PATHS[@]}"; do [ -e "$p" ] || echo "$p"; done > "$STATE/created-host-paths"
  fi
  mkdir -p "$LOGS" "$PIDS"
  make_pki "$NODE_IP"
}

step_etcd() {
  start_daemon etcd "$ETCD_BIN/etcd" --name hcp-etcd-mgmt --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "hcp-etcd-mgmt=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level warn
  wait_for etcd 30 "etcd health" curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health"
}

step_apiserver() {
  start_daemon kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-address "$NODE_IP" --bind-address 0.0.0.0 --secure-port "$APISERVER_PORT" \
    --service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged=true \
    --client-ca-file "$PKI/ca.crt" --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP,Hostname \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction,DefaultStorageClass,StorageObjectInUseProtection \
    --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --profiling=false --v=1
  wait_for kube-apiserver 90 "kube-apiserver /readyz" k get --raw /readyz
}

step_controller_manager() {
  local kc=$STATE/controller-manager.kubeconfig
  start_daemon kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$kc" --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
    --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" --cluster-cidr "$POD_CIDR" --allocate-node-cidrs=false \
    --profiling=false --v=1
  wait_for kube-controller-manager 60 "kube-controller-manager /healthz" \
    curl -fsSk https://127.0.0.1:10257/healthz
}

step_scheduler() {
  local kc=$STATE/scheduler.kubeconfig
  start_daemon kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig "$kc" --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
    --bind-address 127.0.0.1 --leader-elect=false --profiling=false --v=1
  wait_for kube-scheduler 60 "kube-scheduler /healthz" curl -fsSk https://127.0.0.1:10259/healthz
}

# Cluster objects the node and its host processes need: the default StorageClass (volumes of the size
# each claim asks for, from lib/loop-volumes.sh, removed on delete) and read access for CoreDNS.
step_cluster_objects() {
  local sc_provisioner
  sc_provisioner=$(k get storageclass standard -o jsonpath='{.provisioner}' 2>/dev/null || true)
  if [ -n "$sc_provisioner" ] && [ "$sc_provisioner" != hcp-etcd.test/loop-volume ]; then
    k delete storageclass standard >/dev/null   # the provisioner of a StorageClass is immutable
  fi
  k apply -f - >/dev/null <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: hcp-etcd.test/loop-volume
reclaimPolicy: Delete
volumeBindingMode: Immediate
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "hcp-etcd:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "hcp-etcd:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "hcp-etcd:coredns"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "hcp-etcd:coredns"}
EOF
}

# The provisioner of StorageClass `standard`: each PVC gets an ext4 image of the size it asks for,
# loop-mounted (lib/loop-volumes.sh), so free space and full disks are the volume's own.
step_volumes() {
  start_daemon loop-volumes "$CLUSTER_LIB/loop-volumes.sh"
  sleep 0.5
  alive "$(pid_of loop-volumes)" || fail_component loop-volumes "exited at start"
}

step_containerd() {
  mkdir -p "$CONTAINERD_DIR" "$CNI_CONF_DIR"
  cat > "$CONTAINERD_DIR/config.toml" <<EOF
version = 2
root = "$CONTAINERD_DIR/root"
state = "$CONTAINERD_DIR/state"
plugin_dir = "$CONTAINERD_DIR/plugins"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CONTAINERD_DIR/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/hcp-etcd/pause:3.10"
  # The host may withhold CAP_SYS_RESOURCE (true here: a negative oom_score_adj is EPERM), so clamp
  # the sandbox's -998 and Guaranteed pods' -997 to containerd's own score instead of failing runc.
  restrict_oom_score_adj = true
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$CONTAINERD_DIR/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$CNI_CONF_DIR"
    max_conf_num = 1
EOF
  start_daemon containerd containerd --config "$CONTAINERD_DIR/config.toml"
  wait_for containerd 30 "containerd socket" ctr --address "$CONTAINERD_SOCK" version
}

# Images are built and imported by tests/cluster/images.sh (owned separately); pods never pull.
step_images() {
  local images=$CLUSTER_HOME/images.sh
  if [ ! -x "$images" ]; then log "images: $images not found, skipping"; return; fi
  CONTAINERD_ADDRESS=$CONTAINERD_SOCK CONTAINERD_NAMESPACE=k8s.io HCP_ETCD_CONTAINERD_SOCKET=$CONTAINERD_SOCK \
    "$images" >&2 || die "images: $images failed"
}

step_cni() {
  mkdir -p "$CNI_CONF_DIR" "$STATE/cni/ipam"
  cat > "$CNI_CONF_DIR/10-$CNI_NETWORK.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$STATE/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  [ -f "$STATE/ip_forward.orig" ] || sysctl -n net.ipv4.ip_forward > "$STATE/ip_forward.orig"
  sysctl -qw net.ipv4.ip_forward=1
  modprobe br_netfilter 2>/dev/null || true   # built into some kernels (no /lib/modules): then sysctl suffices
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || log "cni: net.bridge.bridge-nf-call-iptables unavailable"
}

step_kubelet() {
  mkdir -p "$KUBELET_ROOT" "$STATE/pod-logs"
  cat > "$STATE/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: AlwaysAllow}
tlsCertFile: "$PKI/kubelet-serving.crt"
tlsPrivateKeyFile: "$PKI/kubelet-serving.key"
containerRuntimeEndpoint: "unix://$CONTAINERD_SOCK"
imageServiceEndpoint: "unix://$CONTAINERD_SOCK"
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDNS: ["$NODE_IP"]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: /etc/resolv.conf
podLogsDir: "$STATE/pod-logs"
healthzBindAddress: 127.0.0.1
healthzPort: 10248
# Images are imported, never pulled: image GC must never remove them, and a full disk must not evict.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
maxPods: 110
serializeImagePulls: false
oomScoreAdj: 0            # a negative score needs CAP_SYS_RESOURCE, which the host may withhold
EOF
  start_daemon kubelet "$K8S_BIN/kubelet" --config "$STATE/kubelet-config.yaml" \
    --kubeconfig "$STATE/kubelet.kubeconfig" --root-dir "$KUBELET_ROOT" --cert-dir "$KUBELET_ROOT/pki" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v=1
  wait_for kubelet 60 "kubelet /healthz" curl -fsS http://127.0.0.1:10248/healthz
  wait_for kubelet 90 "node $NODE_NAME Ready" node_ready
}

node_ready() {
  [ "$(k get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

step_kube_proxy() {
  cat > "$STATE/kube-proxy-config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$STATE/kube-proxy.kubeconfig"}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
conntrack: {maxPerCore: 0}
oomScoreAdj: 0
iptables: {masqueradeAll: false}
EOF
  start_daemon kube-proxy "$K8S_BIN/kube-proxy" --config "$STATE/kube-proxy-config.yaml" --v=1
  wait_for kube-proxy 60 "kube-proxy /healthz" curl -fsS http://127.0.0.1:10256/healthz
}

# Cluster DNS: CoreDNS as a host process answering on the node IP (which pods reach through the
# bridge gateway); kubelet's clusterDNS points there.
step_coredns() {
  cat > "$STATE/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    ready $COREDNS_READY
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $STATE/coredns.kubeconfig
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 1
    }
    forward . /etc/resolv.conf
}
EOF
  start_daemon coredns "$COREDNS_BIN/coredns" -conf "$STATE/Corefile"
  wait_for coredns 60 "CoreDNS ready" curl -fsS "http://$COREDNS_READY/ready"
}

cmd_up() {
  local start=$SECONDS
  NODE_IP=$(detect_node_ip)
  if [ -f "$KUBECONFIG_ADMIN" ] && all_running && node_ready; then
    log "cluster already up (node $NODE_NAME Ready); kubeconfig: $KUBECONFIG_ADMIN"
    return
  fi
  log "up: state dir $STATE, node $NODE_NAME ($NODE_IP)"
  run_step packages        step_packages
  run_step binaries        step_binaries
  run_step pki             step_pki
  run_step etcd            step_etcd
  run_step apiserver       step_apiserver
  run_step controller-manager step_controller_manager
  run_step scheduler       step_scheduler
  run_step cluster-objects step_cluster_objects
  run_step volumes         step_volumes
  run_step containerd      step_containerd
  run_step images          step_images
  run_step cni             step_cni
  run_step coredns         step_coredns
  run_step kubelet         step_kubelet
  run_step kube-proxy      step_kube_proxy
  log "cluster up in $((SECONDS - start)) s; export KUBECONFIG=$KUBECONFIG_ADMIN"
}

all_running() {
  local c
  for c in "${COMPONENTS[@]}"; do running "$c" || return 1; done
}

# ---- down --------------------------------------------------------------------------------------

# Stop and remove every pod sandbox through CRI (runs CNI DEL, removes the netns), then anything
# left in containerd's k8s.io namespace.
remove_pods() {
  running containerd || return 0
  local cri=(--runtime-endpoint "unix://$CONTAINERD_SOCK" --image-endpoint "unix://$CONTAINERD_SOCK" --timeout 30s)
  local pods
  pods=$("$CRICTL" "${cri[@]}" pods -q 2>/dev/null || true)
  if [ -n "$pods" ]; then
    log "down: removing $(echo "$pods" | wc -l) pod sandbox(es)"
    # shellcheck disable=SC2086
    "$CRICTL" "${cri[@]}" stopp $pods >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    "$CRICTL" "${cri[@]}" rmp -f $pods >/dev/null 2>&1 || true
  fi
  local ctr=(ctr --address "$CONTAINERD_SOCK" -n k8s.io) t
  for t in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
    "${ctr[@]}" tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
    "${ctr[@]}" tasks rm -f "$t" >/dev/null 2>&1 || true
  done
  for t in $("${ctr[@]}" containers ls -q 2>/dev/null); do "${ctr[@]}" containers rm "$t" >/dev/null 2>&1 || true; done
}

# containerd shims outlive containerd; kill those that serve our socket (and only those).
kill_shims() {
  local pid
  for pid in $(pgrep -f containerd-shim-runc-v2 || true); do
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-address $CONTAINERD_SOCK " || continue
    log "down: killing leftover shim $pid"
    kill -KILL "$pid" 2>/dev/null || true
  done
}

unmount_all() {
  local m left
  for _ in 1 2 3 4 5; do
    left=$(mounts_under "$STATE")
    [ -n "$left" ] || return 0
    while IFS= read -r m; do umount "$m" 2>/dev/null || true; done <<< "$left"
  done
  left=$(mounts_under "$STATE")
  [ -z "$left" ] || { log "down: lazy-unmounting $left"; while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done <<< "$left"; }
}

# kubelet's pod cgroups (cgroupfs driver): remove the kubepods trees once no process is left in them.
remove_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

# iptables chains kubelet (KUBE-FIREWALL, canaries), kube-proxy and the CNI plugins leave behind.
remove_iptables_chains() {
  local cmd table rule chain
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null || continue
    for table in filter nat mangle; do
      # rules in any chain that jump to our chains first, then our chains themselves
      "$cmd-save" -t "$table" 2>/dev/null | grep -E '^-A .* -j (KUBE|CNI)-' | sed 's/^-A /-D /' |
        while IFS= read -r rule; do eval "$cmd -t $table $rule" 2>/dev/null || true; done || true
      for chain in $("$cmd-save" -t "$table" 2>/dev/null | sed -n 's/^:\(\(KUBE\|CNI\)-[^ ]*\) .*/\1/p'); do
        "$cmd" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$cmd-save" -t "$table" 2>/dev/null | sed -n 's/^:\(\(KUBE\|CNI\)-[^ ]*\) .*/\1/p'); do
        "$cmd" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

# Host paths kubelet/containerd/libcni hard-code: remove those `up` created; in /var/log/containers
# only our symlinks.
remove_host_paths() {
  local p
  find /var/log/containers -maxdepth 1 -type l -lname "$STATE/*" -delete 2>/dev/null || true
  [ -f "$STATE/created-host-paths" ] || return 0
  while IFS= read -r p; do
    [ -d "$p" ] || continue
    # kubelet.sock of the device-plugin manager lives in /var/lib/kubelet whatever --root-dir says
    [ "$p" != /var/lib/kubelet ] || find "$p" -type s -delete
    find "$p" -depth -type d -empty -delete   # only empty directories: never someone else's files
  done < "$STATE/created-host-paths"
}

cmd_down() {
  local start=$SECONDS
  if [ ! -d "$STATE" ]; then log "down: nothing to do ($STATE does not exist)"; return; fi
  stop_daemons kubelet
  remove_pods
  stop_daemons containerd
  kill_shims
  stop_daemons kube-proxy coredns loop-volumes kube-scheduler kube-controller-manager
  pkill -f "$CLUSTER_LIB/hcp-operator.sh" 2>/dev/null || true   # started by hcp.sh
  [ ! -x "$K8S_BIN/kube-proxy" ] || "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  stop_daemons kube-apiserver
  stop_daemons etcd
  unmount_all
  remove_cgroups
  if ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then ip link delete "$CNI_BRIDGE"; fi
  remove_iptables_chains
  [ ! -f "$STATE/ip_forward.orig" ] || sysctl -qw "net.ipv4.ip_forward=$(cat "$STATE/ip_forward.orig")"
  remove_host_paths
  rm -rf "$STATE"
  log "cluster down in $((SECONDS - start)) s"
}

# ---- status / kubeconfig -----------------------------------------------------------------------

cmd_status() {
  local c rc=0
  for c in "${COMPONENTS[@]}"; do
    if running "$c"; then printf '  %-24s running (pid %s)\n' "$c" "$(pid_of "$c")"
    else printf '  %-24s NOT running\n' "$c"; rc=1; fi
  done
  if [ -f "$KUBECONFIG_ADMIN" ] && node_ready; then echo "  node $NODE_NAME: Ready"
  else echo "  node $NODE_NAME: not Ready"; rc=1; fi
  [ ! -f "$KUBECONFIG_ADMIN" ] || k version 2>/dev/null | sed 's/^/  /' || true
  echo "  kubeconfig: $KUBECONFIG_ADMIN"
  return $rc
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  kubeconfig) echo "$KUBECONFIG_ADMIN" ;;
  smoke) cmd_smoke ;;
  *) echo "usage: $0 up|down|status|kubeconfig|smoke" >&2; exit 2 ;;
esac
