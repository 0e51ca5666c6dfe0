# Sourced by the bench scripts beside bench/run.sh: the repository as working directory, the cached
# binaries, the local cluster (started when KUBECONFIG names none) and the venv with the collection.
# Sets here, repo, cache, KUBECTL, ETCDCTL; exports KUBECONFIG, KUBECTL, PATH and the Ansible paths.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
. tests/cluster/versions.env
cache=${HCP_ETCD_CACHE:-$HOME/.cache/hcp-etcd}
export KUBECTL=${KUBECTL:-$cache/kubernetes-$KUBERNETES_VERSION/bin/kubectl}
ETCDCTL=$cache/etcd-$ETCD_VERSION/bin/etcdctl
if [ -z "${KUBECONFIG:-}" ]; then tests/cluster/cluster.sh up >/dev/null; KUBECONFIG=$(tests/cluster/cluster.sh kubeconfig); fi
export KUBECONFIG PATH=$repo/.venv/bin:$PATH ANSIBLE_COLLECTIONS_PATH=$repo/.collections ANSIBLE_CONFIG=$repo/ansible.cfg
