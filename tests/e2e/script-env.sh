# shellcheck shell=bash
# The environment of the end-to-end scripts (fleet.sh, hosted_api.sh), sourced after `set -euo pipefail`: the
# repository as the working directory, the versions, the cluster ($KUBECONFIG or the local one) for kubectl and
# kubernetes.core, the collection and the venv of `make install`, no colours, and $KUBECTL.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
. tests/cluster/versions.env

if [ -z "${KUBECONFIG:-}" ]; then KUBECONFIG=$(tests/cluster/cluster.sh kubeconfig); fi
export KUBECONFIG K8S_AUTH_KUBECONFIG=$KUBECONFIG
export ANSIBLE_COLLECTIONS_PATH=$repo/.collections ANSIBLE_CONFIG=$repo/ansible.cfg
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 NO_COLOR=1 PY_COLORS=0
export PATH=$repo/.venv/bin:$PATH
KUBECTL=${HCP_ETCD_KUBECTL:-$HOME/.cache/hcp-etcd/kubernetes-$KUBERNETES_VERSION/bin/kubectl}
export KUBECTL
