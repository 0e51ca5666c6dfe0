#!/usr/bin/env bash
# Where an upload's CPU goes: ours (bench/transfer.py, PodTransport as shipped) against `kubectl cp`, the
# wall time, the client's CPU time (user + system) and the whole machine's (/proc/stat, every core), and
# the sha256 of the file in the pod after each run. docs/benchmark.md, "The upload on a second core".
#
#   bench/upload-cpu.sh NAMESPACE POD [SIZE_MIB (512)] [REPS (3)]     e.g. after make hcp-up NAME=x POLICY=SingleReplica
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../tests/cluster/versions.env"
ns=$1 pod=$2 size=${3:-512} reps=${4:-3}
K=${HCP_ETCD_KUBECTL:-$HOME/.cache/hcp-etcd/kubernetes-$KUBERNETES_VERSION/bin/kubectl}
PY=${PYTHON:-$here/../.venv/bin/python}
src=$(mktemp /var/tmp/upload-cpu.XXXXXX)
trap 'rm -f "$src"' EXIT
head -c $((size * 1024 * 1024)) /dev/urandom > "$src"
want=$(sha256sum "$src" | cut -c1-64)
busy() { awk '/^cpu /{print ($2+$3+$4+$7+$8)/100}' /proc/stat; }   # user nice system irq softirq, in seconds
for rep in $(seq 1 "$reps"); do
  for tool in ours kubectl-cp; do
    "$K" -n "$ns" exec "$pod" -c etcd -- rm -f /var/lib/upload-cpu.bin /var/lib/upload-cpu.bin.tmp
    case $tool in
      ours) cmd=("$PY" "$here/transfer.py" upload "$ns" "$pod" etcd "$src" /var/lib/upload-cpu.bin) ;;
      kubectl-cp) cmd=("$K" cp -c etcd "$src" "$ns/$pod:/var/lib/upload-cpu.bin") ;;
    esac
    b0=$(busy)
    /usr/bin/time -f "%e %U %S" -o "$src.time" "${cmd[@]}" > /dev/null
    b1=$(busy)
    read -r wall user sys < "$src.time"
    got=$("$K" -n "$ns" exec "$pod" -c etcd -- sha256sum /var/lib/upload-cpu.bin | cut -c1-64)
    python3 - "$tool" "$size" "$rep" "$wall" "$user" "$sys" "$b0" "$b1" "$(nproc)" "$([ "$got" = "$want" ] && echo ok || echo BAD)" <<'PY'
import sys
tool, size, rep, wall, user, sys_, b0, b1, ncpu, sha = sys.argv[1:]
wall, cpu, machine = float(wall), float(user) + float(sys_), float(b1) - float(b0)
print("tool=%s size=%sMiB rep=%s wall=%.2fs mib_s=%.1f client_cpu=%.2fs machine_cpu=%.2fs busy=%.0f%% sha256=%s"
      % (tool, size, rep, wall, int(size) / wall, cpu, machine, 100 * machine / (int(ncpu) * wall), sha))
PY
    rm -f "$src.time"
  done
done
"$K" -n "$ns" exec "$pod" -c etcd -- rm -f /var/lib/upload-cpu.bin
