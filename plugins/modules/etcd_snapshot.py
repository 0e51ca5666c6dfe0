#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: etcd_snapshot
short_description: Take a verified etcd snapshot of a HyperShift hosted control plane
version_added: 0.1.0
author:
  - hcp.etcd maintainers (@hcp-etcd)
description:
  - Copies the etcd data of a HyperShift hosted control plane to a file on the controller,
    with a JSON sidecar C(<dest>.json) that records where it came from, its sha256, size,
    revision and key count, and whether restoring it needs C(--skip-hash-check).
  - With O(method=save) it runs C(etcdctl snapshot save) over TLS inside container O(container)
    of an etcd pod (by default the first Ready pod labelled C(app=etcd) in O(namespace)) to a
    temporary file under O(remote_tmp_dir), streams it to O(dest) while it checks it with C(snapshot status -w json)
    and reads the member's key count and hashkv at its revision, and always removes the temporary file. Before the save it refuses, with the
    numbers, when the member's volume has less free space than the database's size plus 10% and
    64 MiB (the save writes a full copy beside the live data), and after it refuses a file whose
    sha256 trailer is missing or wrong (the backup fails; a damaged file is never kept).
  - With O(method=copy_db) it copies the raw bbolt file O(db_path) from O(pod) (for example a
    helper pod that mounts a member's PVC when no etcd member serves). Such a copy has no sha256
    trailer, so the sidecar records that the restore needs C(--skip-hash-check).
  - Transfers go over the Kubernetes exec websocket in chunks, are checked with sha256 and size
    on both ends, and are written to a temporary file that is renamed into place. O(dest) and
    the sidecar are created with mode C(0600); a missing parent directory is created C(0700).
  - With O(hosted_cluster), the sidecar binds the snapshot to that HostedCluster (UID, namespace,
    name), the etcd version and the fingerprint (sha256) of the etcd encryption key in
    O(encryption_key_secret); a restore compares them (M(hcp.etcd.etcd_snapshot_info)).
  - Idempotent. When O(dest) exists and its sha256 matches its sidecar nothing is done unless
    O(force=true).
  - "The module runs on the controller: use C(delegate_to: localhost) or a localhost play."
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - hcp.etcd.etcd_tls
requirements:
  - "python >= 3.9"
  - "kubernetes >= 24.2.0"
  - "In the container: etcdctl (and etcdutl for etcd 3.5+), sh, cat, head, wc and sha256sum"
attributes:
  check_mode:
    support: full
    description: Reports what would be done; creates, copies and removes nothing.
options:
  namespace:
    description:
      - Control-plane namespace of the hosted cluster, C(<hosted-cluster-namespace>-<cluster-name>)
        with dots of the name replaced by dashes (for example C(clusters-demo)).
    type: str
    required: true
  pod:
    description:
      - Pod to read from. With O(method=save) the default is the first Ready pod with label
        O(label_selector). Required with O(method=copy_db).
    type: str
  label_selector:
    description: Label selector used to find the etcd pods when O(pod) is not set.
    type: str
    default: app=etcd
  container:
    description: Container of O(pod) to exec into.
    type: str
    default: etcd
  method:
    description:
      - V(save) takes a consistent snapshot from a serving member with C(etcdctl snapshot save).
      - V(copy_db) copies the raw C(member/snap/db) file, for when no member serves.
    type: str
    choices: [save, copy_db]
    default: save
  dest:
    description:
      - Path of the snapshot file on the controller. The sidecar is written to C(<dest>.json).
    type: path
    required: true
  db_path:
    description: Path of the bbolt file in the container, used with O(method=copy_db).
    type: str
    default: /var/lib/data/member/snap/db
  remote_tmp_dir:
    description:
      - Writable directory in the container for the temporary snapshot of O(method=save).
        The etcd container's root file system is read-only; C(/var/lib) is its PVC.
    type: str
    default: /var/lib
  cluster_name:
    description: Name of the HostedCluster, recorded in the sidecar.
    type: str
  hosted_cluster_namespace:
    description: Namespace of the HostedCluster (often C(clusters)), recorded in the sidecar.
    type: str
  hosted_cluster:
    description:
      - The HostedCluster object (as C(kubernetes.core.k8s_info) returns it). Its UID, namespace and
        name are recorded in the sidecar, with the fingerprint of O(encryption_key_secret).
    type: dict
  encryption_key_secret:
    description:
      - The Secret named by the HostedCluster's C(spec.secretEncryption.aescbc.activeKey). Only the
        sha256 of its key is recorded, never the key. Required when O(hosted_cluster) has such a key.
      - Only C(metadata.name) and C(data.key) are read. Give no more than those two, as
        every string of this secret option is masked wherever it appears in the results (the Secret's namespace is
        often the HostedCluster's, its owner the HostedCluster's UID).
    type: dict
  compare_members:
    description:
      - With O(method=save), the member pods whose own key count and C(endpoint hashkv) at the snapshot's revision must
        equal those of the member the snapshot was saved from (for example every member of the StatefulSet).
      - They are read at the same time, each in its own pod, while the file comes down. When one differs (a member
        serving an empty or other store) or cannot be read, the module fails naming it, and removes the file, so
        no snapshot is kept that not every member holds. This is the proof by data of the backup's pre-flight,
        done at the snapshot's revision, so a member's store is scanned once per backup instead of twice.
      - Empty (the default), only the saving member is read, and a read that fails is a warning.
    type: list
    elements: str
    default: []
  force:
    description: Take a new snapshot even when O(dest) already matches its sidecar.
    type: bool
    default: false
  timeout:
    description: Seconds allowed for each command or transfer in the container; the save, its check and the
      download of a large database get more (one minute plus the time at 2 MiB/s for its size).
    type: int
    default: 600
notes:
  - Only the exec websocket is used; C(tar) is not needed in the container.
  - A raw O(method=copy_db) copy of a member that is still running may be inconsistent; stop
    etcd (scale the StatefulSet to 0) and read the PVC from a helper pod.
seealso:
  - module: hcp.etcd.etcd_restore_member
  - module: kubernetes.core.k8s_cp
"""

EXAMPLES = r"""
- name: Snapshot the etcd of hosted cluster clusters/demo
  hcp.etcd.etcd_snapshot:
    namespace: clusters-demo
    cluster_name: demo
    hosted_cluster_namespace: clusters
    dest: /var/backups/hcp/demo/etcd-{{ ansible_date_time.iso8601_basic_short }}.db
  delegate_to: localhost
  register: snap

- name: Show what was saved
  ansible.builtin.debug:
    msg: "{{ snap.dest }}: revision {{ snap.revision }}, {{ snap.total_keys }} keys, sha256 {{ snap.sha256 }}"

- name: Copy the raw db of member 0 from a helper pod that mounts PVC data-etcd-0 at /var/lib
  hcp.etcd.etcd_snapshot:
    namespace: clusters-demo
    method: copy_db
    pod: "{{ helper_pod_name }}"
    container: restore
    dest: /var/backups/hcp/demo/etcd-0-raw.db
"""

RETURN = r"""
dest:
  description: Absolute path of the snapshot on the controller.
  returned: always
  type: str
  sample: /var/backups/hcp/demo/etcd.db
path:
  description: Same as RV(dest) (for symmetry with other file modules).
  returned: always
  type: str
  sample: /var/backups/hcp/demo/etcd.db
sidecar:
  description: Path of the JSON sidecar written next to O(dest).
  returned: always
  type: str
  sample: /var/backups/hcp/demo/etcd.db.json
cluster_name:
  description: O(cluster_name), as recorded.
  returned: always
  type: str
  sample: demo
hosted_cluster_namespace:
  description: O(hosted_cluster_namespace), as recorded.
  returned: always
  type: str
  sample: clusters
hosted_cluster_uid:
  description: UID of O(hosted_cluster), as recorded; null without it.
  returned: always
  type: str
  sample: 5f2c1d0e-8a4b-4c3d-9e1f-2a3b4c5d6e7f
encryption_key_fingerprint:
  description: C(sha256:<hex>) of the etcd encryption key, C(none) without one; null without O(hosted_cluster).
  returned: always
  type: str
  sample: sha256:9b1f0c1e4a2b5d6c7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d
space:
  description: Free bytes on the member's volume, the database's size and the bytes the save needed.
  returned: when O(method=save) ran
  type: dict
  sample: {"db_size": 25165824, "free": 7516192768, "need": 94791270}
namespace:
  description: Control-plane namespace.
  returned: always
  type: str
  sample: clusters-demo
member:
  description: Pod the data came from.
  returned: always
  type: str
  sample: etcd-0
method:
  description: V(save) or V(copy_db).
  returned: always
  type: str
  sample: save
sha256:
  description: sha256 of the file, verified on both ends of the transfer. Empty in check mode.
  returned: always
  type: str
  sample: 3f0c1e4a2b5d6c7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e
size:
  description: Size in bytes.
  returned: always
  type: int
  sample: 25165856
revision:
  description: etcd revision in the snapshot (from C(snapshot status)); null when unknown.
  returned: always
  type: int
  sample: 183412
total_keys:
  description: Number of keys in the snapshot; null when unknown.
  returned: always
  type: int
  sample: 2193
hash:
  description: Hash reported by C(snapshot status); null when unknown.
  returned: always
  type: int
  sample: 3141592653
kv_count:
  description:
    - With O(method=save), the number of keys the member served at the snapshot's revision (what a restore drill of
      the snapshot must find); null when it could not be read (compacted since the save) or for C(copy_db).
  returned: always
  type: int
  sample: 209
kv_hash:
  description: With O(method=save), the member's C(endpoint hashkv) at the snapshot's revision; null as for RV(kv_count).
  returned: always
  type: int
  sample: 1176742966
members_compared:
  description: With O(compare_members), each member's C(name), C(keys) and C(hash) at the snapshot's revision (all equal,
    or the module failed); the saving member first.
  returned: when O(compare_members) is given and the snapshot was taken
  type: list
  elements: dict
  sample: [{"name": "etcd-0", "keys": 209, "hash": 1176742966}, {"name": "etcd-1", "keys": 209, "hash": 1176742966}]
etcd_version:
  description: Version of etcdctl (or etcdutl) in the container.
  returned: always
  type: str
  sample: 3.5.16
needs_skip_hash_check:
  description: Whether restoring this file needs C(--skip-hash-check) (true for raw copies).
  returned: always
  type: bool
  sample: false
started_at:
  description: UTC time the copy started (ISO 8601).
  returned: always
  type: str
  sample: "2026-11-26T05:30:00Z"
finished_at:
  description: UTC time the copy finished (ISO 8601).
  returned: always
  type: str
  sample: "2026-11-26T05:30:12Z"
msg:
  description: What was done, or would be done in check mode.
  returned: always
  type: str
  sample: saved etcd-0 to /var/backups/hcp/demo/etcd.db
"""

import os
import uuid
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.hcp.etcd.plugins.module_utils import etcd_cli, snapshot_file
from ansible_collections.hcp.etcd.plugins.module_utils.etcd_module import (
    ETCD_TLS_ARG_SPEC,
    EtcdMember,
    EtcdModule,
    EtcdModuleError,
    data_problems,
    scan_at,
    unreadable,
    utc_iso,
)
from ansible_collections.hcp.etcd.plugins.module_utils.pod_transport import (
    ExecTimeout,
    PodTransportError,
    scaled_timeout,
)

ARGUMENT_SPEC = dict(
    ETCD_TLS_ARG_SPEC,
    namespace=dict(type="str", required=True),
    pod=dict(type="str"),
    label_selector=dict(type="str", default="app=etcd"),
    container=dict(type="str", default="etcd"),
    method=dict(type="str", choices=["save", "copy_db"], default="save"),
    dest=dict(type="path", required=True),
    db_path=dict(type="str", default="/var/lib/data/member/snap/db"),
    remote_tmp_dir=dict(type="str", default="/var/lib"),
    cluster_name=dict(type="str"),
    hosted_cluster_namespace=dict(type="str"),
    hosted_cluster=dict(type="dict"),
    encryption_key_secret=dict(type="dict", no_log=True),
    compare_members=dict(type="list", elements="str", default=[]),
    force=dict(type="bool", default=False),
    timeout=dict(type="int", default=600),
)


def ensure_parent(path):
    """Create the missing directories above ``path``, each 0700 (whatever the umask)."""
    parent = os.path.dirname(path)
    if parent and not os.path.isdir(parent):
        ensure_parent(parent)
        try:
            os.mkdir(parent, 0o700)
            os.chmod(parent, 0o700)
        except OSError:
            if not os.path.isdir(parent):  # made by a run beside this one (a fleet's backups share backup_dir): fine
                raise


def snapshot_status(transport, tools, path, timeout=None):
    tool = tools.get("status_tool")
    if not tool:
        return None
    rc, out, err = transport.exec(etcd_cli.snapshot_status_argv(tool, path), idempotent=True, timeout=timeout)
    if rc != 0:
        raise EtcdModuleError(
            "%s snapshot status %s failed in %s: %s"
            % (tool, path, transport.where(), err.decode("utf-8", "replace").strip())
        )
    return etcd_cli.parse_snapshot_status(out, err)


def kv_at(mod, source, status):
    """The saving member's (``source``, an EtcdMember) key count and hashkv at the snapshot's revision, what a restore
    drill compares ({} if unreadable)."""
    revision = (status or {}).get("revision")
    if not revision:
        return {}
    try:
        found = source.scan(revision)
        why = unreadable(found, source.name)
    except (PodTransportError, etcd_cli.EtcdCliError) as exc:
        why = str(exc)
    if why:
        mod.warn("the key count and hash at revision %d could not be read from %s (compacted since the save?): %s; "
                 "a restore drill of this backup will not compare them" % (revision, source.transport.where(), why))
        return {}
    return {"kv_count": found["keys"], "kv_hash": found["hash"]}


def members_at(mod, source, names, status):
    """Every member's key count and hashkv at the snapshot's revision, read at once; the saving member (``source``,
    an EtcdMember) first. Raises, naming the member, unless every one equals the saving member."""
    revision = (status or {}).get("revision")
    if not revision:
        raise EtcdModuleError("the snapshot's revision is unknown (no snapshot status in %s): the members cannot be compared "
                              "with it; nothing was kept" % source.transport.where())
    members = [source] + [EtcdMember(mod, name) for name in names if name != source.name]
    try:
        found = scan_at(members, revision, wait_behind=10)  # a healthy follower applies the saved revision in ms
    except (PodTransportError, etcd_cli.EtcdCliError) as exc:
        raise EtcdModuleError("the key count and hashkv of every member at the snapshot's revision %d could not be read: %s. "
                              "Nothing was kept; back up again (a member that stopped answering, or a compaction past that "
                              "revision)" % (revision, exc))
    differ = ["%s (%s)" % (f["name"], "; ".join(data_problems(f, found[0]))) for f in found[1:] if data_problems(f, found[0])]
    if differ:
        raise EtcdModuleError(
            "the snapshot saved from %s at revision %d is not what every member serves: %s. Nothing was kept. The members "
            "serve different stores (the empty ones a restore of one member only leaves, which endpoint health calls "
            "healthy): restore every member from the last good backup (playbooks/restore.yml -e snapshot=...), then back "
            "up again" % (found[0]["name"], revision, ", ".join(differ)))
    return {"kv_count": found[0]["keys"], "kv_hash": found[0]["hash"], "members_compared": found}


def check_save_space(transport, db_path, tmp_dir):
    """Refuse, with the numbers and the fix, a save that would fill the member's volume."""
    out = transport.exec_ok(["stat", "-c", "%s", db_path], what="stat %s" % db_path)
    db_size = int(out.decode("utf-8", "replace").strip() or 0)
    free = etcd_cli.parse_df_available(transport.exec_ok(["df", "-Pk", tmp_dir], what="df -Pk %s" % tmp_dir))
    need = snapshot_file.save_space_needed(db_size)
    if free < need:
        raise EtcdModuleError(
            "not enough space on the volume of %s for snapshot save: %d MiB free in %s, the database %s is %d MiB "
            "and the save writes a full copy beside it (%d MiB needed with the margin). Nothing was written. "
            "Defragment the member (etcdctl defrag) or grow its PVC, then back up again"
            % (transport.where(), free // 2 ** 20, tmp_dir, db_path, db_size // 2 ** 20, need // 2 ** 20)
        )
    return dict(db_size=db_size, free=free, need=need)


def corrupt_for_test(transport, remote):
    """The fault switch of the e2e proof (off by default): HCP_ETCD_FAULT_SNAPSHOT=corrupt-trailer
    zeroes the 32-byte sha256 trailer of the file `snapshot save` left, before it is copied."""
    if os.environ.get("HCP_ETCD_FAULT_SNAPSHOT") == "corrupt-trailer":
        transport.exec_ok(["sh", "-c", 'truncate -s -32 "$0" && truncate -s +32 "$0"', remote], what="fault switch")


def sidecar_binding(p, etcd_version):
    """The binding fields of the sidecar (empty without O(hosted_cluster))."""
    if not p["hosted_cluster"]:
        return dict(hosted_cluster_uid=None, encryption_key_fingerprint=None)
    bound = snapshot_file.binding(p["hosted_cluster"], p["encryption_key_secret"], etcd_version)
    for key in ("cluster_name", "hosted_cluster_namespace"):
        if p[key] and p[key] != bound[key]:
            raise EtcdModuleError("%s is %s but the hosted_cluster given is %s" % (key, p[key], bound[key]))
    return dict((key, bound[key]) for key in snapshot_file.BINDING_KEYS)


def run_snapshot(mod):
    """The snapshot and its sidecar; the module's result (one exit_json, in work)."""
    p = mod.params
    dest = os.path.abspath(p["dest"])
    sidecar = etcd_cli.sidecar_path(dest)
    method = p["method"]
    base = dict(dest=dest, path=dest, sidecar=sidecar)

    if not p["force"]:
        previous = snapshot_file.unchanged_sidecar(dest)
        if previous is not None:
            result = dict((k, previous.get(k)) for k in etcd_cli.SIDECAR_KEYS)
            result.update(base)
            return dict(result, changed=False, msg="%s already matches its sidecar (force: true takes a new one)" % dest)

    if method == "copy_db" and not p["pod"]:
        raise EtcdModuleError("method copy_db needs pod (a pod that mounts the member's PVC)")
    pod = p["pod"] or mod.ready_pod(p["namespace"], p["label_selector"])
    transport = mod.transport(p["namespace"], pod, p["container"], timeout=p["timeout"])
    transport.check()

    facts = dict(
        cluster_name=p["cluster_name"],
        hosted_cluster_namespace=p["hosted_cluster_namespace"],
        hosted_cluster_uid=None,
        encryption_key_fingerprint=None,
        namespace=p["namespace"],
        member=pod,
        method=method,
        sha256="",
        size=0,
        revision=None,
        total_keys=None,
        hash=None,
        kv_count=None,
        kv_hash=None,
        etcd_version=None,
        needs_skip_hash_check=(method == "copy_db"),
        started_at=utc_iso(),
        finished_at=None,
    )
    facts.update(base)
    if mod.check_mode:
        what = "etcdctl snapshot save" if method == "save" else "copy %s" % p["db_path"]
        facts["finished_at"] = facts["started_at"]
        return dict(facts, changed=True, msg="would %s in %s to %s" % (what, transport.where(), dest))

    tools = mod.probe_tools(transport)
    facts["etcd_version"] = tools.get("etcd_version")
    facts.update(sidecar_binding(p, facts["etcd_version"]))
    ensure_parent(dest)

    if method == "save":
        if not tools.get("has_etcdctl"):
            raise EtcdModuleError("etcdctl not found in %s; snapshot save needs it" % transport.where())
        tls = mod.etcd_tls(transport)
        facts["space"] = check_save_space(transport, p["db_path"], p["remote_tmp_dir"])
        # the save, its check and its download each get the timeout, or more when the database needs it
        timeout = scaled_timeout(facts["space"]["db_size"], p["timeout"])
        remote = "%s/hcp-etcd-snapshot-%s.db" % (p["remote_tmp_dir"].rstrip("/"), uuid.uuid4().hex[:12])
        # A member that died during an earlier save left its temporary file on the volume; remove such
        # leftovers (older than an hour, so a concurrent save is never touched) before adding another.
        try:
            transport.exec(["find", p["remote_tmp_dir"], "-maxdepth", "1", "-name", "hcp-etcd-snapshot-*.db*",
                            "-mmin", "+60", "-delete"], idempotent=True, timeout=60)
        except PodTransportError as exc:
            mod.warn("could not look for old temporary snapshots in %s: %s" % (transport.where(), exc))
        try:
            argv = etcd_cli.snapshot_save_argv(remote, p["endpoint"], tls["cacert"], tls["cert"], tls["key"])
            rc, _out, err = transport.exec(argv, timeout=timeout)
            if rc != 0:
                raise EtcdModuleError(
                    "etcdctl snapshot save failed in %s (rc=%s): %s; is the member healthy? "
                    "If no member serves, use method copy_db"
                    % (transport.where(), rc, err.decode("utf-8", "replace").strip())
                )
            corrupt_for_test(transport, remote)
            # While the file comes down: its status (revision, keys), then the member's (or every member compared)
            # key count and hashkv at that revision. A failed check or a difference removes the file.
            tls_args = etcd_cli.tls_args(p["endpoint"], tls["cacert"], tls["cert"], tls["key"])

            source = EtcdMember(mod, pod, transport, tls_args)

            def check():
                status = snapshot_status(transport, tools, remote, timeout=timeout)
                if p["compare_members"]:
                    return status, members_at(mod, source, p["compare_members"], status)
                return status, kv_at(mod, source, status)

            with ThreadPoolExecutor(max_workers=1) as pool:
                checked = pool.submit(check)
                sha, size = transport.download(remote, dest, timeout=timeout)
                try:
                    status, counted = checked.result()
                except Exception:
                    os.unlink(dest)
                    raise
                facts.update(counted)
        finally:
            try:
                transport.exec(["rm", "-f", remote, remote + ".part"], idempotent=True, timeout=60)
            except PodTransportError as exc:
                mod.warn("could not remove %s in %s: %s" % (remote, transport.where(), exc))
        try:
            snapshot_file.require_trailer(dest, "save")
        except snapshot_file.SnapshotFileError:
            os.unlink(dest)
            raise
        facts["needs_skip_hash_check"] = False
    else:
        status = None
        try:
            status = snapshot_status(transport, tools, p["db_path"], timeout=min(p["timeout"], 120))
        except (EtcdModuleError, etcd_cli.EtcdCliError, ExecTimeout) as exc:
            mod.warn("snapshot status of %s failed (is etcd still running on it?): %s" % (p["db_path"], exc))
        if status is None and not tools.get("status_tool"):
            mod.warn("no etcdutl/etcdctl in %s: revision and key count are unknown" % transport.where())
        sha, size = transport.download(p["db_path"], dest, timeout=p["timeout"])
        facts["needs_skip_hash_check"] = True

    os.chmod(dest, 0o600)
    facts.update(sha256=sha, size=size, finished_at=utc_iso())
    if status:
        facts.update(revision=status["revision"], total_keys=status["total_keys"], hash=status["hash"])
    record = etcd_cli.build_sidecar(**dict((k, facts[k]) for k in etcd_cli.SIDECAR_KEYS))
    snapshot_file.write_json_0600(sidecar, record)
    return dict(facts, changed=True, msg="%s %s of %s to %s (%d bytes)"
                % ("saved snapshot" if method == "save" else "copied raw db", pod, p["namespace"], dest, size))


def work(mod):
    mod.exit_json(**run_snapshot(mod))


def main():
    module = EtcdModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.run(work)


if __name__ == "__main__":
    main()
