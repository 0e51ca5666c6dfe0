#!/usr/bin/env bash
# The collection as a user installs it: build the artifact, install it with ansible-galaxy into an
# empty collections path, in a fresh virtual environment that holds only ansible-core and the Python
# requirements the collection declares (its requirements.txt), beside kubernetes.core (the declared
# collection dependency; Galaxy is not reachable here, so it is the copy of the version the tests pin).
# Then a real backup and restore of a SingleReplica control plane on the local cluster (or $KUBECONFIG)
# by FQCN from that install, run from an empty directory (no ansible.cfg, no checkout on any path),
# proven by data. A filter, module or collection used but not declared fails here. The control plane
# runs etcd 3.7 (ARTIFACT_ETCD), the newest minor etcd serves, so that 3.7 gets a backup and a restore in
# make test without a control plane of its own.
#
#   tests/artifact/run.sh        (part of tests/e2e/run.sh, item "artifact")
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
. tests/cluster/versions.env
NAME=${ARTIFACT_HCP_NAME:-e2e-artifact}
ETCD=${ARTIFACT_ETCD:-3.7}
NS=clusters-$NAME
OUT=${HCP_ETCD_E2E_DIR:-$repo/tests/output/e2e}/artifact
PY=${PYTHON:-/usr/bin/python3}
export KUBECONFIG=${KUBECONFIG:-$(tests/cluster/cluster.sh kubeconfig)}
export K8S_AUTH_KUBECONFIG=$KUBECONFIG
DATA="tests/tools/etcd-data"
GALAXY_IMPORTER_VERSION=0.4.44
log() { printf '%s [artifact] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { log "FAIL: $*"; exit 1; }
trap 'tests/cluster/hcp.sh down "$NAME" >/dev/null 2>&1 || true' EXIT

rm -rf "$OUT"; mkdir -p "$OUT/dist" "$OUT/collections" "$OUT/run"; chmod 700 "$OUT"
# a command of the fresh venv, from an empty directory: no ansible.cfg, only the collections installed here
clean() {
  (cd "$OUT/run" && env -u ANSIBLE_CONFIG -u ANSIBLE_COLLECTIONS_PATHS ANSIBLE_COLLECTIONS_PATH="$OUT/collections" \
     ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false ANSIBLE_FORCE_COLOR=0 "$@")
}
log "build the artifact"
.venv/bin/ansible-galaxy collection build --force --output-path "$OUT/dist" . >/dev/null
tarball=$(ls "$OUT"/dist/hcp-etcd-*.tar.gz)
pin() { sed -n "s/^$1==//p" requirements-dev.txt; }

# Galaxy's own import check of the artifact (its ansible-lint and ansible-doc runs use the dev venv's;
# ansible-test sanity is make sanity's): content found, docs load, lint clean, no warning at all.
log "galaxy-importer $GALAXY_IMPORTER_VERSION on $(basename "$tarball")"
"$PY" -m venv "$OUT/importer"
"$OUT/importer/bin/pip" install -q --disable-pip-version-check "galaxy-importer==$GALAXY_IMPORTER_VERSION"
printf '[galaxy-importer]\nRUN_ANSIBLE_TEST = False\nRUN_ANSIBLE_LINT = True\nRUN_FLAKE8 = False\nCHECK_CHANGELOG = True\n' > "$OUT/importer.cfg"
(cd "$OUT/run" && PATH=$repo/.venv/bin:$PATH GALAXY_IMPORTER_CONFIG=$OUT/importer.cfg \
   "$OUT/importer/bin/python" -m galaxy_importer.main "$tarball") > "$OUT/importer.log" 2>&1 \
  || { tail -n 30 "$OUT/importer.log"; fail "galaxy-importer"; }
grep -q "Importer processing completed successfully" "$OUT/importer.log" || fail "galaxy-importer did not complete"
if grep -E "^(WARNING|ERROR)" "$OUT/importer.log"; then fail "galaxy-importer warned (above; $OUT/importer.log)"; fi
log "galaxy-importer: $(grep -c '^Loading' "$OUT/importer.log") contents loaded, ansible-lint clean, no warning"

log "a fresh venv: ansible-core $(pin ansible-core) and the collection's declared Python requirements only"
"$PY" -m venv "$OUT/venv"
"$OUT/venv/bin/pip" install -q --disable-pip-version-check "ansible-core==$(pin ansible-core)"
coll=$OUT/collections
# kubernetes.core, the declared dependency: the version the tests pin (from the ansible package; see
# requirements-dev.txt), placed as ansible-galaxy would install it, so that the install below finds it.
kc=$(.venv/bin/python -c 'import os, ansible_collections as a; print([os.path.join(p, "kubernetes", "core") for p in a.__path__
     if os.path.isfile(os.path.join(p, "kubernetes", "core", "MANIFEST.json"))][0])')
mkdir -p "$coll/ansible_collections/kubernetes"
cp -r "$kc" "$coll/ansible_collections/kubernetes/core"
log "ansible-galaxy collection install $(basename "$tarball") (dependencies resolved offline against kubernetes.core $(
  "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["collection_info"]["version"])' "$kc/MANIFEST.json"))"
clean "$OUT/venv/bin/ansible-galaxy" collection install --offline -p "$coll" "$tarball" > "$OUT/install.log" 2>&1 \
  || { cat "$OUT/install.log"; fail "ansible-galaxy collection install"; }
grep -q "hcp.etcd:.* was installed successfully" "$OUT/install.log" || { cat "$OUT/install.log"; fail "hcp.etcd was not installed"; }
installed=$coll/ansible_collections/hcp/etcd
"$OUT/venv/bin/pip" install -q --disable-pip-version-check -r "$installed/requirements.txt"
# Nothing else reachable: no ansible bundle in the venv, no collection outside $coll.
if "$OUT/venv/bin/python" -c 'import ansible_collections' 2>/dev/null; then fail "the fresh venv has collections of its own"; fi
"$OUT/venv/bin/pip" freeze > "$OUT/venv-freeze.txt"
log "venv: $(tr '\n' ' ' < "$OUT/venv-freeze.txt" | grep -oE '(ansible-core|kubernetes)==[^ ]+' | tr '\n' ' ')"

run() {  # LOG ARGS...: ansible-playbook of the fresh venv, from an empty directory, the install only
  local logf=$1; shift
  clean "$OUT/venv/bin/ansible-playbook" "$@" > "$OUT/$logf" 2>&1 || { tail -n 40 "$OUT/$logf"; fail "ansible-playbook $*"; }
}

log "control plane $NAME (SingleReplica, etcd $ETCD), data set A"
tests/cluster/hcp.sh down "$NAME" > "$OUT/hcp.log" 2>&1
tests/cluster/hcp.sh up "$NAME" SingleReplica "$ETCD" >> "$OUT/hcp.log" 2>&1 || { tail -n 20 "$OUT/hcp.log"; fail "hcp.sh up"; }
$DATA seed --namespace "$NS" --set A > "$OUT/data.log" 2>&1 || fail "seed A"

log "backup: ansible-playbook hcp.etcd.backup (the installed artifact)"
run backup.log hcp.etcd.backup -e cluster_name="$NAME" -e backup_dir="$OUT/backups"
snap=$(ls -1 "$OUT"/backups/clusters/"$NAME"/*/etcd-snapshot.db | sort | tail -n1)
[ -f "$snap.json" ] || fail "no sidecar beside $snap"
taken_on=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["etcd_version"])' "$snap.json")
case $taken_on in "$ETCD".*) log "the backup ran on etcd $taken_on" ;; *) fail "the sidecar says etcd $taken_on, not $ETCD.x" ;; esac

log "data set B written after the backup, then restore: ansible-playbook hcp.etcd.restore"
$DATA seed --namespace "$NS" --set B >> "$OUT/data.log" 2>&1 || fail "seed B"
run restore.log hcp.etcd.restore -e cluster_name="$NAME" -e snapshot="$snap" -e confirm=true -e restore_work_dir="$OUT/restore"
# the roles and modules that ran are the installed ones
grep -q "TASK \[hcp.etcd.restore : " "$OUT/restore.log" || fail "the restore role did not run"
if grep -qE "$repo/(roles|plugins|playbooks)/" "$OUT/backup.log" "$OUT/restore.log"; then fail "the runs used the checkout ($repo)"; fi

log "verify by data"
$DATA verify --namespace "$NS" --expect A --absent B --members 1 | tee -a "$OUT/data.log" | sed 's/^/  /' \
  || fail "the restored member does not serve exactly data set A"
log "RESULT artifact: installed $(basename "$tarball") into a fresh venv (ansible-core + declared requirements), backup and restore by FQCN on etcd $ETCD, data verified: PASS"
