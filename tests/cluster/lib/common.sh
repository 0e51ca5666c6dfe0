# shellcheck shell=bash disable=SC2034  # settings used by cluster.sh
# Shared settings and helpers of tests/cluster/cluster.sh: paths, logging, the step runner, daemons
# started as background processes with PID files (PID 1 is not systemd here), and waiting.

CLUSTER_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLUSTER_HOME=$(dirname "$CLUSTER_LIB")
# shellcheck source=versions.env source-path=SCRIPTDIR/..
. "$CLUSTER_HOME/versions.env"

STATE=${HCP_ETCD_CLUSTER_DIR:-/var/tmp/hcp-etcd-cluster}
CACHE=${HCP_ETCD_CACHE:-$HOME/.cache/hcp-etcd}
K8S_BIN=$CACHE/kubernetes-$KUBERNETES_VERSION/bin
ETCD_BIN=$CACHE/etcd-$ETCD_VERSION/bin
COREDNS_BIN=$CACHE/coredns-$COREDNS_VERSION-min/bin
CRICTL=$CACHE/cri-tools-$CRI_TOOLS_VERSION/bin/crictl
KUBECTL=$K8S_BIN/kubectl

NODE_NAME=${HCP_ETCD_NODE_NAME:-hcp-etcd-node}
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1          # first address of SERVICE_CIDR: the `kubernetes` Service
POD_CIDR=10.88.0.0/16
CNI_NETWORK=hcp-etcd
CNI_BRIDGE=hcp-cni0
CLUSTER_DOMAIN=cluster.local
APISERVER_PORT=6443
ETCD_CLIENT_PORT=12379        # not 2379: tests may run their own etcd on the host
ETCD_PEER_PORT=12380
COREDNS_READY=127.0.0.1:18181
# Host paths that kubelet, containerd and libcni use whatever their flags say. `up` records which of them
# did not exist before (in $STATE/created-host-paths) and `down` removes exactly those.
HARDCODED_HOST_PATHS=(/var/lib/kubelet /var/log/containers /var/lib/cni /run/containerd /etc/cni /opt/containerd)

PKI=$STATE/pki
LOGS=$STATE/logs
PIDS=$STATE/pids
KUBECONFIG_ADMIN=$STATE/kubeconfig
CONTAINERD_DIR=$STATE/containerd
CONTAINERD_SOCK=$CONTAINERD_DIR/containerd.sock
KUBELET_ROOT=$STATE/kubelet
CNI_CONF_DIR=$STATE/cni/net.d
CNI_BIN_DIR=/usr/lib/cni

# Components in start order; `down` stops them in reverse (kubelet first is handled explicitly).
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler loop-volumes containerd kubelet kube-proxy coredns)

log()  { printf '%s [cluster] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die()  { log "ERROR: $*"; exit 1; }

# Print the tail of a component's log, then fail.
fail_component() {
  local name=$1; shift
  log "ERROR: $name: $*"
  if [ -f "$LOGS/$name.log" ]; then
    log "---- last 40 lines of $LOGS/$name.log ----"
    tail -n 40 "$LOGS/$name.log" >&2
    log "----"
  fi
  exit 1
}

# run_step <name> <function>: one small, idempotent, timed step.
run_step() {
  local name=$1 fn=$2 start=$SECONDS
  log "step $name: start"
  "$fn"
  log "step $name: done ($((SECONDS - start)) s)"
}

# kubectl as cluster admin; never the google-cloud-sdk wrapper in /usr/bin.
k() { "$KUBECTL" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

pid_of() { [ -f "$PIDS/$1.pid" ] && cat "$PIDS/$1.pid"; }

# running <name>: true if the recorded PID is alive and still runs the binary we started.
running() {
  local pid; pid=$(pid_of "$1") || return 1
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$1"
}

# start_daemon <name> <command...>: start in its own session, log to logs/<name>.log, record its PID.
start_daemon() {
  local name=$1; shift
  if running "$name"; then log "$name: already running (pid $(pid_of "$name"))"; return; fi
  mkdir -p "$LOGS" "$PIDS"
  log "$name: starting: $*"
  setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
  echo $! > "$PIDS/$name.pid"
}

alive() { [ -d "/proc/$1" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }

# stop_daemons <name...>: SIGTERM to all of them at once, wait up to 15 s, then SIGKILL.
# Only the PIDs we recorded (and only if they still run the binary we started).
stop_daemons() {
  local name pids=() pid i
  for name in "$@"; do
    if running "$name"; then
      pid=$(pid_of "$name"); pids+=("$pid")
      log "$name: stopping pid $pid"
      kill -TERM "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDS/$name.pid"
  done
  for pid in "${pids[@]}"; do
    for i in $(seq 1 75); do alive "$pid" || break; sleep 0.2; done
    if alive "$pid"; then log "pid $pid still alive after 15 s, SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  done
}

# wait_for <component> <seconds> <description> <command...>: poll until the command succeeds;
# on timeout (or if the component died) print the component's log tail and fail.
wait_for() {
  local name=$1 timeout=$2 what=$3; shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    # alive, not running: right after start_daemon the child may not have exec'd the binary yet (its
    # cmdline is still this script's), which `running` would take for a dead component.
    if [ "$name" != - ] && [ -f "$PIDS/$name.pid" ] && ! alive "$(cat "$PIDS/$name.pid")"; then
      fail_component "$name" "process exited while waiting for $what"
    fi
    [ $SECONDS -lt $deadline ] || fail_component "$name" "timed out after ${timeout}s waiting for $what"
    sleep 0.5
  done
}

# The IPv4 address of the interface that holds the default route: the node's InternalIP.
detect_node_ip() {
  local ip
  ip=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n1)
  [ -n "$ip" ] || ip=$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n1)
  [ -n "$ip" ] || die "cannot find the node IPv4 address"
  echo "$ip"
}

# Mount points at or below a directory, deepest first.
mounts_under() {
  awk -v p="$1" '{ m=$5; gsub(/\\040/, " ", m); if (m == p || index(m, p "/") == 1) print m }' /proc/self/mountinfo |
    awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2-
}
