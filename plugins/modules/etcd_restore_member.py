#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: etcd_restore_member
short_description: Restore one etcd member's data directory from a snapshot
version_added: 0.1.0
author:
  - hcp.etcd maintainers (@hcp-etcd)
description:
  - Restores the data directory of ONE etcd member of a HyperShift hosted control plane, inside
    a pod that mounts that member's PVC at C(/var/lib) (a helper pod running the etcd image,
    while the etcd StatefulSet is scaled to 0). Run it once per member, every member from the
    same snapshot with the same O(initial_cluster) and O(initial_cluster_token).
  - Streams O(src) into the pod (sha256 and size verified on both ends, and against
    O(snapshot_sha256) or the sidecar when known), checks it with C(snapshot status), runs
    C(etcdutl snapshot restore) (C(etcdctl) on etcd 3.4) into a staging directory and only
    then swaps it into O(data_dir). The previous data directory is kept as
    C(<data_dir>.pre-restore-<UTC timestamp>) (unless O(keep_previous=false)).
  - Live data is never removed to make room. When the volume cannot hold the uploaded snapshot and
    the restored member beside the live data, the module refuses before any change, with the free
    and needed bytes and the fix (grow the PVC, or remove leftovers of earlier restores).
  - The swap is journaled (see C(plugins/module_utils/member_volume.py)). Before each rename an
    intent journal C(.hcp-etcd-journal.json) is written atomically on the volume, naming the run, the
    previous and the staged directory. A later call settles an interrupted swap or rollback from the
    journal first (this run's swap is finished, another run's is undone), and a rename whose exit
    status was lost is checked on the volume, never retried blindly.
  - Adds C(--bump-revision) and C(--mark-compacted) when the tool in the pod supports them
    (detected from C(snapshot restore --help)), so watchers and informers do not serve stale caches.
  - With O(state=staged) it stops before the swap, leaving the restored member in O(staging_dir).
    This never touches O(data_dir), so it can run while etcd serves from that volume (in a helper pod
    on the same node). The later call with O(state=restored) finds the staged restore, checks it is
    exactly this restore, and only swaps it in; the outage then no longer includes the transfer.
  - With O(state=rolled_back) it undoes the swap made by the restore run O(run_id) (same snapshot and
    member); the restored data directory is set aside as C(<data_dir>.failed-restore-<UTC timestamp>)
    and the previous one is put back. A data directory that another run (even of the same snapshot)
    restored, or that holds no restore, is left alone.
  - Idempotent. A marker C(.hcp-etcd-restore.json) in the restored directory records the snapshot
    sha256, the member, the cluster and a fingerprint of C(member/wal) and C(member/snap). A rerun
    with the same inputs on a data directory etcd has not touched since returns C(changed=false).
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
requirements:
  - "python >= 3.9"
  - "kubernetes >= 24.2.0"
  - "In the container: etcdutl (etcd 3.5+) or etcdctl (etcd 3.4), sh and coreutils (head, wc, sha256sum, stat, df, du, ls, mv -T, rm, sync)"
attributes:
  check_mode:
    support: full
    description: Verifies the inputs and the pod and reports what would be done; changes nothing.
options:
  namespace:
    description: Control-plane namespace where O(pod) runs.
    type: str
    required: true
  pod:
    description: Pod that mounts the member's PVC at C(/var/lib) and has the etcd tools.
    type: str
    required: true
  container:
    description: Container of O(pod) to exec into.
    type: str
    default: restore
  src:
    description:
      - Snapshot file on the controller (from M(hcp.etcd.etcd_snapshot) or another source).
      - Required with O(state=restored) and O(state=staged). A rollback (O(state=rolled_back)) with O(snapshot_sha256)
        does not read it, so a rerun on a controller that no longer has the file (a new AWX execution environment)
        can still put the previous data back.
    type: path
    aliases: [snapshot]
  sidecar:
    description:
      - JSON sidecar of O(src). Default C(<src>.json) when that file exists. Its sha256 must match
        O(src) and its method decides O(skip_hash_check=auto).
    type: path
  snapshot_sha256:
    description:
      - Expected sha256 of O(src); the restore fails before it changes the member if it differs.
      - With O(state=restored), a member whose staged restore (O(state=staged)) is of this sha256 is swapped in
        without reading O(src) again (the swap inside the API downtime hashes nothing); O(src) is read and checked
        only when the member has to be staged now.
      - With O(state=rolled_back) it names the restore to undo (the run record's C(snapshot_sha256)); O(src) is then not
        read.
    type: str
  snapshot_method:
    description: How O(src) was made, when there is no sidecar. V(copy_db) means a raw C(member/snap/db).
    type: str
    choices: [save, copy_db]
  skip_hash_check:
    description:
      - Pass C(--skip-hash-check) to the restore. V(auto) passes it only for a raw C(copy_db) file
        or a file without a valid sha256 trailer (a C(snapshot save) file is verified).
    type: str
    choices: [auto, "yes", "no"]
    default: auto
  member:
    description: Member name, which is the etcd pod name (for example C(etcd-0)).
    type: str
    required: true
    aliases: [name]
  initial_cluster:
    description:
      - Every member of the restored cluster as C(name=peer-url) pairs, comma separated, for example
        C(etcd-0=https://etcd-0.etcd-discovery.clusters-demo.svc:2380,etcd-1=...).
    type: str
    required: true
  initial_cluster_token:
    description: Cluster token; HyperShift does not set one, so etcd's default applies.
    type: str
    default: etcd-cluster
  initial_advertise_peer_urls:
    description: Peer URL(s) of O(member). Default is O(member)'s URL in O(initial_cluster).
    type: str
  data_dir:
    description:
      - etcd data directory in the pod. An absolute path at least two levels deep; no component may
        be empty, C(.), C(..), start with C(-) or hold characters outside C([A-Za-z0-9_.:+@=-]).
    type: str
    default: /var/lib/data
  staging_dir:
    description:
      - Directory the restore writes first; removed if left over from an earlier attempt of the same run. Beside
        O(data_dir) (in its parent directory, so on the same volume and renamed atomically), same rules.
      - Default C(<data_dir>.hcp-restore-staging.<run>), where C(<run>) is O(run_id)'s letters and digits, so that two
        runs never write the same directory (C(<data_dir>.hcp-restore-staging) without O(run_id)).
    type: str
  remote_snapshot_path:
    description:
      - Where the snapshot is copied in the pod (beside O(data_dir)); removed at the end.
      - Default C(hcp-etcd-restore.<run>.snap.db) beside O(data_dir) (C(hcp-etcd-restore.snap.db) without O(run_id)).
    type: str
  keep_previous:
    description:
      - Keep the previous data directory as C(<data_dir>.pre-restore-<UTC timestamp>). V(false) removes
        it once the restored member is in place (then there is no rollback).
    type: bool
    default: true
  bump_revision:
    description:
      - Revision bump passed as C(--bump-revision) with C(--mark-compacted) when the tool supports it.
        V(0) disables it.
    type: int
    default: 1000000000
  state:
    description:
      - V(restored) - O(data_dir) holds the member restored from O(src) (a staged restore is swapped in).
      - V(staged) - O(staging_dir) holds it, O(data_dir) is not touched. When the PVC lacks space for
        the staged copy beside the live data, it refuses (nothing changed). When a journal of an
        interrupted swap is on the volume, nothing is staged (RV(staged=false), with a warning) and the
        later V(restored) call, with etcd stopped, settles it.
      - V(rolled_back) - O(data_dir) holds again what it held before this restore swapped it.
    type: str
    choices: [restored, staged, rolled_back]
    default: restored
  run_id:
    description:
      - Identifies the restore run (the role passes the start time of its run record). Recorded in the
        marker when the member is swapped in; O(state=rolled_back) needs it and only undoes a swap of
        that run.
    type: str
  force:
    description: Restore even when the marker says this exact restore is already in place.
    type: bool
    default: false
  timeout:
    description:
      - Seconds allowed at least for each command or transfer in the container. Transfers get more
        as long as bytes flow, and C(snapshot status) and C(snapshot restore) get more for a larger
        snapshot (one second per 2 MiB beyond the first minute).
    type: int
    default: 600
notes:
  - The data directory of a restored member must not be used by a running etcd during the restore;
    scale the etcd StatefulSet to 0 first.
  - The marker file in O(data_dir) makes etcd log one "found invalid file under data directory" warning.
seealso:
  - module: hcp.etcd.etcd_snapshot
"""

EXAMPLES = r"""
- name: Restore member etcd-1 inside the helper pod that mounts PVC data-etcd-1
  hcp.etcd.etcd_restore_member:
    namespace: clusters-demo
    pod: "{{ helper_pod }}"
    container: restore
    src: /var/backups/hcp/demo/etcd.db
    member: etcd-1
    initial_cluster: >-
      etcd-0=https://etcd-0.etcd-discovery.clusters-demo.svc:2380,
      etcd-1=https://etcd-1.etcd-discovery.clusters-demo.svc:2380,
      etcd-2=https://etcd-2.etcd-discovery.clusters-demo.svc:2380
  register: restored

- name: Restore a raw db copy that has no sidecar (skip_hash_check auto decides from snapshot_method)
  hcp.etcd.etcd_restore_member:
    namespace: clusters-demo
    pod: "{{ helper_pod }}"
    src: /var/backups/hcp/demo/etcd-0-raw.db
    snapshot_method: copy_db
    member: etcd-0
    initial_cluster: etcd-0=https://etcd-0.etcd-discovery.clusters-demo.svc:2380

- name: While etcd still serves, stage the restore of etcd-0 in a helper pod on the same node (data untouched)
  hcp.etcd.etcd_restore_member:
    state: staged
    namespace: clusters-demo
    pod: hcp-etcd-restore-etcd-0
    src: /var/backups/hcp/demo/etcd.db
    member: etcd-0
    initial_cluster: etcd-0=https://etcd-0.etcd-discovery.clusters-demo.svc:2380

- name: After etcd is stopped, swap the staged restore in (the same call without state)
  hcp.etcd.etcd_restore_member:
    namespace: clusters-demo
    pod: hcp-etcd-restore-etcd-0
    src: /var/backups/hcp/demo/etcd.db
    member: etcd-0
    initial_cluster: etcd-0=https://etcd-0.etcd-discovery.clusters-demo.svc:2380

- name: The restore failed later - put etcd-0's previous data directory back
  hcp.etcd.etcd_restore_member:
    state: rolled_back
    namespace: clusters-demo
    pod: hcp-etcd-restore-etcd-0
    src: /var/backups/hcp/demo/etcd.db
    member: etcd-0
    initial_cluster: etcd-0=https://etcd-0.etcd-discovery.clusters-demo.svc:2380
"""

RETURN = r"""
member:
  description: The member restored.
  returned: always
  type: str
  sample: etcd-1
data_dir:
  description: The data directory now holding the restored member.
  returned: always
  type: str
  sample: /var/lib/data
previous_data_dir:
  description:
    - Where the previous data directory was kept; null when there was none or it was removed.
    - With O(state=rolled_back), where the restored data directory was set aside.
  returned: always
  type: str
  sample: /var/lib/data.pre-restore-20261126T053000Z
snapshot_sha256:
  description: sha256 of the snapshot, verified on both ends.
  returned: always
  type: str
  sample: 3f0c1e4a2b5d6c7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e
revision:
  description: Revision in the snapshot (before any bump); null when not known.
  returned: always
  type: int
  sample: 183412
total_keys:
  description: Keys in the snapshot; null when not known.
  returned: always
  type: int
  sample: 2193
skip_hash_check:
  description: Whether C(--skip-hash-check) was (or would be) passed.
  returned: always
  type: bool
  sample: false
skip_hash_check_reason:
  description: Why.
  returned: always
  type: str
  sample: the snapshot carries a sha256 trailer that restore verifies
bump_revision_applied:
  description: The C(--bump-revision) value passed, 0 when not supported or disabled.
  returned: always
  type: int
  sample: 1000000000
staged:
  description:
    - V(true) when O(staging_dir) holds this restore after the call, waiting to be swapped in
      (O(state=staged)); V(false) otherwise.
  returned: always
  type: bool
  sample: true
from_stage:
  description: V(true) when a restore staged earlier was swapped in without copying the snapshot again.
  returned: always
  type: bool
  sample: false
settled:
  description: What was done with a journal of an interrupted swap or rollback found on the volume; null when none.
  returned: always
  type: str
  sample: finished the interrupted swap of run 2026-11-26T05:30:00Z
tool:
  description: V(etcdutl) or V(etcdctl).
  returned: always
  type: str
  sample: etcdutl
etcd_version:
  description: Version of the tool used.
  returned: always
  type: str
  sample: 3.5.16
msg:
  description: What was done.
  returned: always
  type: str
  sample: restored etcd-1 into /var/lib/data
"""

import os

from ansible_collections.hcp.etcd.plugins.module_utils import etcd_cli, snapshot_file
from ansible_collections.hcp.etcd.plugins.module_utils.etcd_module import (
    EtcdModule,
    EtcdModuleError,
    utc_stamp,
)
from ansible_collections.hcp.etcd.plugins.module_utils.member_volume import (
    MemberVolume,
    check_layout,
    run_paths,
)

ARGUMENT_SPEC = dict(
    namespace=dict(type="str", required=True),
    pod=dict(type="str", required=True),
    container=dict(type="str", default="restore"),
    src=dict(type="path", aliases=["snapshot"]),
    sidecar=dict(type="path"),
    snapshot_sha256=dict(type="str"),
    snapshot_method=dict(type="str", choices=["save", "copy_db"]),
    skip_hash_check=dict(type="str", choices=["auto", "yes", "no"], default="auto"),
    member=dict(type="str", required=True, aliases=["name"]),
    initial_cluster=dict(type="str", required=True),
    initial_cluster_token=dict(type="str", default=etcd_cli.DEFAULT_TOKEN, no_log=False),
    initial_advertise_peer_urls=dict(type="str"),
    data_dir=dict(type="str", default="/var/lib/data"),
    staging_dir=dict(type="str"),
    remote_snapshot_path=dict(type="str"),
    keep_previous=dict(type="bool", default=True),
    bump_revision=dict(type="int", default=etcd_cli.DEFAULT_BUMP_REVISION),
    state=dict(type="str", choices=["restored", "staged", "rolled_back"], default="restored"),
    run_id=dict(type="str"),
    force=dict(type="bool", default=False),
    timeout=dict(type="int", default=600),
)


def normalise_initial_cluster(text):
    """Strip whitespace (YAML folded scalars add it) and re-join."""
    return ",".join("%s=%s" % pair for pair in etcd_cli.parse_initial_cluster(text))


def inspect_source(params):
    """Everything known about ``src`` locally: sha256, size, trailer, sidecar, method."""
    src = params["src"]
    if not os.path.isfile(src):
        raise EtcdModuleError("snapshot %s does not exist on the controller" % src)
    facts = snapshot_file.inspect(src, params.get("sidecar"), allow_missing_sidecar=True,
                                  method=params.get("snapshot_method"))
    sha = facts["sha256"]
    expected = (params.get("snapshot_sha256") or "").strip().lower() or None
    if expected and expected != sha:
        raise EtcdModuleError("%s has sha256 %s but snapshot_sha256 is %s: wrong or damaged file" % (src, sha, expected))
    skip, reason = etcd_cli.decide_skip_hash_check(params["skip_hash_check"], facts["method"], facts["has_trailer"])
    return dict(sha256=sha, size=facts["size"], sidecar=facts["sidecar"], method=facts["method"],
                trailer=facts["trailer"], skip=skip, reason=reason)


def recorded_source(params):
    """The snapshot as the caller's record names it (``snapshot_sha256``), before ``src`` is read.
    Enough to find this member's staged restore and swap it in; ``lazy`` says the file itself is
    still unread (what staging needs of it comes from inspect_source)."""
    return dict(sha256=params["snapshot_sha256"].strip().lower(), size=None, sidecar=None, method=None, trailer=None,
                skip=None, reason="", lazy=True)


def rollback_source(params):
    """What a rollback needs of the snapshot: its sha256 (the restored data's marker names it). From
    ``snapshot_sha256`` without reading ``src``, else from ``src``."""
    sha = (params.get("snapshot_sha256") or "").strip().lower()
    if sha:
        return dict(sha256=sha, size=None, sidecar=None, method=None, trailer=None, skip=False, reason="")
    if not params.get("src"):
        raise EtcdModuleError("state=rolled_back needs snapshot_sha256 (the run record's) or src")
    return inspect_source(params)


def restore_marker(source, result, member, initial_cluster, token, peer_urls, fingerprint, **extra):
    return etcd_cli.build_marker(
        source["sha256"], member, initial_cluster, token, peer_urls, fingerprint,
        revision=result["revision"], total_keys=result["total_keys"], skip_hash_check=source["skip"],
        bump_revision_applied=result["bump_revision_applied"], tool=result["tool"], **extra
    )


def outcome(result, changed, msg):
    """The module's result: ``result`` with ``changed`` and ``msg``."""
    return dict(result, changed=bool(changed), msg=msg)


def run_restore(mod):
    """The restore, staging or rollback of one member; the module's result (one exit_json, in work)."""
    p = mod.params
    member = p["member"]
    initial_cluster = normalise_initial_cluster(p["initial_cluster"])
    peer_urls = p["initial_advertise_peer_urls"] or etcd_cli.peer_urls_for(initial_cluster, member)
    token = p["initial_cluster_token"]
    staging_default, copy_default = run_paths(p["data_dir"], p["run_id"])
    data_dir, staging, snapshot_path = check_layout(p["data_dir"], p["staging_dir"] or staging_default,
                                                    p["remote_snapshot_path"] or copy_default)
    if p["bump_revision"] < 0:
        raise EtcdModuleError("bump_revision must be 0 (off) or a positive integer")

    if p["state"] == "rolled_back":
        source = rollback_source(p)
    elif p["state"] == "restored" and (p.get("snapshot_sha256") or "").strip():
        source = recorded_source(p)  # src is read only when this member was not staged before (below)
    else:
        source = inspect_source(p)
    sidecar = source["sidecar"] or {}
    result = dict(
        member=member,
        data_dir=data_dir,
        previous_data_dir=None,
        snapshot_sha256=source["sha256"],
        revision=sidecar.get("revision"),
        total_keys=sidecar.get("total_keys"),
        skip_hash_check=source["skip"],
        skip_hash_check_reason=source["reason"],
        bump_revision_applied=0,
        staged=False,
        from_stage=False,
        settled=None,
        tool=None,
        etcd_version=None,
    )

    transport = mod.transport(p["namespace"], p["pod"], p["container"], timeout=p["timeout"])
    transport.tag = p["state"]  # names this run's execs for the fault hook
    vol = MemberVolume(transport, member, data_dir, staging, snapshot_path, timeout=p["timeout"])
    transport.check()
    tools = mod.probe_tools(transport)
    tool = etcd_cli.require_tool(tools, "restore")
    result.update(tool=tool, etcd_version=etcd_cli.version_string(tools.get(tool)))

    if p["state"] == "rolled_back":
        return roll_back(mod, vol, result)
    staging_only = p["state"] == "staged"
    if staging_only:
        pending = vol.read_journal()
        if pending:  # etcd may run on this volume: a swap in flight is settled only while it is stopped
            mod.warn("not staged on %s: the %s of run %s is pending there (journal %s); the restore settles it while "
                     "etcd is stopped" % (vol.where(), pending["op"], pending.get("run_id"), vol.journal_path))
            return outcome(result, False, "%s not staged: a journal is pending" % member)
    elif not mod.check_mode:
        _journal, result["settled"] = vol.settle(p["run_id"])
    wanted = (source["sha256"], member, initial_cluster, token, peer_urls)
    marker = None if p["force"] else vol.holds(data_dir, wanted)
    if marker:
        result.update(
            previous_data_dir=marker.get("previous_data_dir"),
            revision=marker.get("revision", result["revision"]),
            total_keys=marker.get("total_keys", result["total_keys"]),
            skip_hash_check=marker.get("skip_hash_check", result["skip_hash_check"]),
            bump_revision_applied=marker.get("bump_revision_applied", 0),
        )
        return outcome(result, result["settled"], "%s already holds this restore of %s (force: true redoes it)%s"
                       % (data_dir, member, "; " + result["settled"] if result["settled"] else ""))

    bump = 0
    if p["bump_revision"] > 0:
        help_argv = etcd_cli.snapshot_restore_help_argv(tool)
        rc, out, err = transport.exec(help_argv, idempotent=True, timeout=60)
        if rc != 0:
            # Not "no --bump-revision": a member restored without the bump the others get serves revisions
            # they do not, and the stage made with it would be thrown away and redone inside the outage.
            why = (err or out).decode("utf-8", "replace").strip()[:300]
            raise EtcdModuleError("cannot tell whether %s in %s can bump the revision: '%s' failed (rc=%s): %s. "
                                  "This member's data was not changed; rerun the restore"
                                  % (tool, transport.where(), " ".join(help_argv), rc, why))
        if etcd_cli.help_supports_bump_revision(out + err):
            bump = p["bump_revision"]
        else:
            mod.warn(
                "%s %s has no --bump-revision; restoring without it (clients may need to re-list)"
                % (tool, result["etcd_version"])
            )
    result["bump_revision_applied"] = bump

    if mod.check_mode:
        return outcome(result, True, "would %s %s into %s in %s with %s%s"
                       % ("stage" if staging_only else "restore", member, staging if staging_only else data_dir,
                          transport.where(), tool, " --skip-hash-check" if source["skip"] else ""))

    # ---- stage: the snapshot in, checked, restored beside the live data (never in its place)
    # A snapshot known only by its sha256 (recorded_source) finds its stage as it was made (the same bytes
    # give the same --skip-hash-check, unless skip_hash_check names one); without a stage it is read now.
    lazy = source.get("lazy")
    exact_skip = etcd_cli.explicit_skip_hash_check(p["skip_hash_check"]) if lazy else source["skip"]
    staged = vol.holds(staging, wanted, bump_revision_applied=bump,
                       **({} if exact_skip is None else dict(skip_hash_check=exact_skip)))
    if lazy:
        source = dict(source, skip=staged.get("skip_hash_check", False), reason="as staged") if staged else inspect_source(p)
        result.update(revision=(source["sidecar"] or {}).get("revision"), total_keys=(source["sidecar"] or {}).get("total_keys"),
                      skip_hash_check=source["skip"], skip_hash_check_reason=source["reason"])
    if staged:
        result.update(revision=staged.get("revision"), total_keys=staged.get("total_keys"), from_stage=not staging_only)
        if staging_only:
            result["staged"] = True
            return outcome(result, False, "%s already holds this restore of %s, ready to swap in" % (staging, member))
    else:
        vol.require_space(source["size"])
        argv = etcd_cli.snapshot_restore_argv(tool, vol.snapshot_path, member, initial_cluster, peer_urls, staging,
                                              token=token, skip_hash_check=source["skip"], bump_revision=bump)
        status = vol.stage(p["src"], source["sha256"], source["size"], tool, argv)
        result.update(revision=status["revision"], total_keys=status["total_keys"])
        _marker, fingerprint = vol.marker(staging)
        staged = restore_marker(source, result, member, initial_cluster, token, peer_urls, fingerprint, staged_at=utc_stamp())
        vol.write_marker(staging, staged)
    if staging_only:
        result["staged"] = True
        return outcome(result, True, "staged %s in %s (revision %s, %s keys%s); %s is untouched"
                       % (member, staging, result["revision"], result["total_keys"], ", bumped by %d" % bump if bump else "",
                          data_dir))

    # ---- swap, journaled: the previous data directory aside, the staged member in, the marker last.
    # A rename keeps the files' names and times, so the staged fingerprint is the swapped one.
    final = restore_marker(source, result, member, initial_cluster, token, peer_urls, staged["fingerprint"],
                           restored_at=utc_stamp(), run_id=p["run_id"],
                           **(dict(staged_at=staged["staged_at"]) if staged.get("staged_at") else {}))
    result["previous_data_dir"] = vol.swap_in(p["run_id"], final, keep_previous=p["keep_previous"])
    return outcome(result, True, "restored %s into %s (revision %s, %s keys%s%s)"
                   % (member, data_dir, result["revision"], result["total_keys"], ", bumped by %d" % bump if bump else "",
                      ", staged before" if result["from_stage"] else ""))


def roll_back(mod, vol, result):
    """Put back the data directory this run's restore moved aside (settling its journal first);
    leave alone what this run did not swap. The module's result."""
    run_id = mod.params["run_id"]
    if mod.check_mode:
        journal = vol.read_journal()
        marker = vol.marker(vol.data_dir)[0] or {}
        mine = journal is not None or (marker.get("run_id") == run_id and bool(marker.get("restored_at")))
        return outcome(result, mine, "would roll back %s (run %s)%s" % (
            result["member"], run_id, ", settling %s first" % vol.journal_path if journal else ""))
    changed, aside, msg = vol.roll_back(run_id, result["snapshot_sha256"])
    result["previous_data_dir"] = aside
    return outcome(result, changed, msg)


def work(mod):
    mod.exit_json(**run_restore(mod))


def main():
    module = EtcdModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                        required_if=[("state", "restored", ["src"]), ("state", "staged", ["src"]),
                                     ("state", "rolled_back", ["run_id"])])
    module.run(work)


if __name__ == "__main__":
    main()
