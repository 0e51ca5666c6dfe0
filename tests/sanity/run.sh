#!/usr/bin/env bash
# ansible-test sanity for hcp.etcd, offline except for PyPI.
#
# ansible-test wants to run from a directory whose path ends in ansible_collections/hcp/etcd and
# resolves symlinks, so the tracked and untracked (not ignored) files are copied into
# .cache/sanity/ansible_collections/hcp/etcd first. Its pip bootstrap normally downloads
# get-pip from ci-files.testing.ansible.com; we place a small get_pip_<version>.py in its cache
# (~/.ansible/test/cache) that installs pip from a wheel fetched from PyPI with the venv's pip.
# Usage: tests/sanity/run.sh [extra ansible-test sanity args, e.g. --test validate-modules]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${VENV:-$root/.venv}
py=$venv/bin/python
[ -x "$py" ] || { echo "sanity: $py missing; run make install" >&2; exit 2; }
start=$SECONDS

# 1. get_pip_<version>.py for ansible-test's pip bootstrap, from PyPI
pip_version=$("$py" - <<'PY'
import re, ansible_test, os
src = open(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")).read()
m = re.search(r"default_packages = dict\(\s*pip='([^']+)'", src)
print(m.group(1) if m else "24.2")
PY
)
wheel_dir=$root/.cache/pip-bootstrap
cache_dir=$HOME/.ansible/test/cache
get_pip=$cache_dir/get_pip_${pip_version//./_}.py
wheel=$(ls "$wheel_dir"/pip-"$pip_version"-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
  "$venv/bin/pip" download --disable-pip-version-check -q --no-deps --only-binary=:all: \
    -d "$wheel_dir" "pip==$pip_version"
  wheel=$(ls "$wheel_dir"/pip-"$pip_version"-*.whl | head -n1)
fi
mkdir -p "$cache_dir"
if [ ! -f "$get_pip" ] || grep -q 'hcp.etcd offline pip bootstrap' "$get_pip"; then
  cat > "$get_pip" <<PY
# hcp.etcd offline pip bootstrap: stands in for get-pip-${pip_version}.py (written by tests/sanity/run.sh).
# Installs pip from a wheel downloaded from PyPI, with the arguments ansible-test passes to get-pip.
import os
import runpy
import sys

WHEEL = ${wheel@Q}
if not os.path.exists(WHEEL):
    sys.exit("pip wheel %s missing: rerun tests/sanity/run.sh" % WHEEL)
sys.path.insert(0, WHEEL)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.argv = ["pip", "install", "--no-index", "--find-links", os.path.dirname(WHEEL)] + args
runpy.run_module("pip", run_name="__main__", alter_sys=True)
PY
fi

# 2. a copy of the collection under a path ansible-test accepts
work=$root/.cache/sanity/ansible_collections/hcp/etcd
rm -rf "$work"
mkdir -p "$work"
(cd "$root" && git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | xargs -0 cp --parents -t "$work")
# ansible-test lists files through git when it finds a repository; give the copy its own.
(cd "$work" && git init -q && git add -A >/dev/null 2>&1)

# 3. kubernetes.core (from the ansible package) must be importable next to hcp.etcd
ac=$("$py" -c 'import ansible_collections, os; print([p for p in ansible_collections.__path__ if os.path.isdir(os.path.join(p, "kubernetes", "core"))][0])')
mkdir -p "$root/.cache/sanity/ansible_collections/kubernetes"
ln -sfn "$ac/kubernetes/core" "$root/.cache/sanity/ansible_collections/kubernetes/core"

cd "$work"
export PATH=$venv/bin:$PATH
echo "sanity: ansible-test sanity in $work (pip bootstrap: $get_pip)"
ansible-test sanity --local --python 3.11 --color no "$@"
echo "sanity: passed in $((SECONDS - start)) s"
