#!/usr/bin/env bash
# Unit tests of hcp.etcd (pure logic and the modules' control flow over a faked exec stream).
# The collection is made importable as ansible_collections.hcp.etcd through a link under .cache;
# kubernetes.core comes from the `ansible` package in the venv. Extra args go to pytest.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${VENV:-$root/.venv}
[ -x "$venv/bin/python" ] || { echo "units: $venv missing; run make install" >&2; exit 2; }
path=$root/.cache/units
mkdir -p "$path/ansible_collections/hcp"
ln -sfn "$root" "$path/ansible_collections/hcp/etcd"
cd "$root"
export PYTHONPATH=$path:$root/tests/unit${PYTHONPATH:+:$PYTHONPATH}
exec "$venv/bin/python" -m pytest -p no:cacheprovider -q -n auto tests/unit "$@"
