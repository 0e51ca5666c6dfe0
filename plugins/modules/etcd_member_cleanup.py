#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: etcd_member_cleanup
short_description: List, or remove, what restores and backups left on the etcd member volumes
version_added: 0.3.0
author:
  - hcp.etcd maintainers (@hcp-etcd)
description:
  - Looks at the volume of every etcd member through its running etcd container, beside the data directory, for
    what earlier runs left there, with each entry's size and the volume's free space. A restore keeps the previous
    data directory (C(data.pre-restore-<UTC>)) and, after a rollback, the restored one it set aside
    (C(data.failed-restore-<UTC>)); an interrupted restore leaves its staging directory and snapshot copy; an
    interrupted backup leaves its temporary snapshot (C(hcp-etcd-snapshot-*)); partial writes end in C(.tmp).
  - With O(state=absent) it removes them, except the previous data directory that the data directory's restore
    marker names (the data from before the last restore) unless O(keep_previous=false).
    A directory is first renamed to a C(.tmp) name (atomic), then removed, so an interrupted removal leaves
    only a C(.tmp) leftover that the next cleanup removes, never a half-removed directory under its real name.
  - Refuses on every member, before it removes anything, when any member's volume holds a restore journal
    (C(.hcp-etcd-journal.json)), because a restore is under way or was interrupted there, and only that restore,
    rerun, may settle it.
  - Never touches the data directory itself. Take the run lock (M(hcp.etcd.etcd_lock)) around it, as
    the C(hcp.etcd.cleanup) playbook does, so that no backup or restore runs meanwhile.
  - With O(room_for_snapshot) it only checks, reading, that the volume of every member whose etcd container runs
    has room for the restore of a snapshot of that many bytes beside its live data (the snapshot copy, the restored
    member and a WAL, as M(hcp.etcd.etcd_restore_member) needs; a leftover staging directory counts as free), and
    fails naming each member without room, its free bytes and the fix. This is the restore's pre-flight, before any
    change. A member whose etcd container does not run is reported C(measured=false); the restore measures its
    volume again from a helper pod, before the outage.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
options:
  namespace:
    description: Control-plane namespace holding the etcd pods.
    type: str
    required: true
  members:
    description: Member pods to look at. Default, every member StatefulSet O(statefulset) declares.
    type: list
    elements: str
  statefulset:
    description: The etcd StatefulSet, read when O(members) is not given.
    type: str
    default: etcd
  container:
    description: Container running etcd (the member volume is mounted there).
    type: str
    default: etcd
  data_dir:
    description: The member's data directory, as in M(hcp.etcd.etcd_restore_member).
    type: str
    default: /var/lib/data
  staging_dir:
    description:
      - A staging directory M(hcp.etcd.etcd_restore_member) was given. Staging directories of every run with the default
        names (C(<data_dir>.hcp-restore-staging[.<run>])) are found without it.
    type: str
  remote_snapshot_path:
    description:
      - A snapshot copy path M(hcp.etcd.etcd_restore_member) was given. Copies of every run with the default names
        (C(hcp-etcd-restore[.<run>].snap.db) beside O(data_dir)) are found without it.
    type: str
  state:
    description: C(listed) only reports; C(absent) removes what the report marks C(remove).
    type: str
    choices: [listed, absent]
    default: listed
  keep_previous:
    description: Keep the previous data directory the data directory's restore marker names.
    type: bool
    default: true
  room_for_snapshot:
    description:
      - Size in bytes of the snapshot a restore will bring. Only checks that every running member has room for that
        restore beside its live data (see the description); lists and removes nothing. Needs O(state=listed).
    type: int
  timeout:
    description: Seconds allowed for each command in a pod (a removal of a large directory may need more).
    type: int
    default: 600
attributes:
  check_mode:
    support: full
    description: In check mode nothing is removed; the report says what would be.
  diff_mode:
    support: none
    description: Returns no diff.
"""

EXAMPLES = r"""
- name: List what earlier runs left on the member volumes
  hcp.etcd.etcd_member_cleanup:
    namespace: clusters-my-cluster
  register: left

- name: Remove it, keeping the data from before the last restore
  hcp.etcd.etcd_member_cleanup:
    namespace: clusters-my-cluster
    state: absent
- name: Refuse, before any change, a restore of a 2 GiB snapshot that does not fit beside the live data
  hcp.etcd.etcd_member_cleanup:
    namespace: clusters-my-cluster
    room_for_snapshot: 2147483648
"""

RETURN = r"""
members:
  description: One entry per member with C(name), C(free_bytes) (after a removal, measured again) and C(entries),
    with O(room_for_snapshot) C(measured), C(free_bytes), C(needed_bytes) and C(why) (when not measured) instead of
    C(entries); else C(entries) each with C(path), C(bytes), C(kind) (C(previous), C(failed_restore), C(staging), C(snapshot_copy),
    C(backup_snapshot) or C(partial)), C(action) (C(keep) or C(remove)), C(why) and C(removed).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "etcd-0", "free_bytes": 7516192768, "entries": [{"path": "/var/lib/data.pre-restore-20261129T101500Z",
    "bytes": 41943040, "kind": "previous", "action": "keep", "removed": false,
    "why": "the data from before the last restore (its marker names it); keep_previous=false removes it"}]}]
removable_bytes:
  description: Bytes of the entries marked C(remove), on all members.
  returned: always
  type: int
  sample: 41943040
summary:
  description: One line per member and entry, then a total.
  returned: always
  type: list
  elements: str
  sample: ["etcd-0: /var/lib/data.pre-restore-20261129T101500Z 40 MiB previous: keep", "removable: 0 MiB on 1 members"]
"""

import posixpath

from ansible_collections.hcp.etcd.plugins.module_utils import etcd_cli
from ansible_collections.hcp.etcd.plugins.module_utils.etcd_module import EtcdModule, EtcdModuleError
from ansible_collections.hcp.etcd.plugins.module_utils.member_volume import MemberVolume, classify_leftover, run_paths
from ansible_collections.hcp.etcd.plugins.module_utils.pod_transport import PodTransportError


def plan_member(vol, keep_previous):
    """The member's leftovers, each with what to do with it (pure over the volume's answers)."""
    previous = (vol.marker(vol.data_dir)[0] or {}).get("previous_data_dir")
    entries = []
    for path in vol.leftovers():
        kind = classify_leftover(vol, path)
        if kind == "previous" and path == previous and keep_previous:
            action, why = "keep", "the data from before the last restore (its marker names it); keep_previous=false removes it"
        else:
            action, why = "remove", "left by an earlier run"
        entries.append(dict(path=path, bytes=vol.used_bytes(path), kind=kind, action=action, why=why, removed=False))
    return entries


def member_volume(mod, name):
    p = mod.params
    transport = mod.transport(p["namespace"], name, p["container"], timeout=p["timeout"])
    transport.check()
    staging, copy = run_paths(p["data_dir"], None)
    return MemberVolume(transport, name, p["data_dir"], p["staging_dir"] or staging, p["remote_snapshot_path"] or copy,
                        timeout=p["timeout"])


def check_room(mod, names):
    """The restore's pre-flight: every running member has room for the snapshot beside its live data."""
    size = mod.params["room_for_snapshot"]
    members, short = [], []
    for name in names:
        try:
            free = member_volume(mod, name).require_space(size)
        except PodTransportError as exc:  # not running, or its container does not answer: not measured here
            members.append(dict(name=name, measured=False, why=str(exc)))
            continue
        except EtcdModuleError as exc:
            if not exc.result.get("no_space"):
                raise
            short.append(str(exc))
            free = exc.result["free_bytes"]
        members.append(dict(name=name, measured=True, free_bytes=free, needed_bytes=etcd_cli.restore_space_needed(size)))
    summary = ["%s: %s" % (m["name"], "%d MiB free, %d MiB needed" % (m["free_bytes"] // 1048576, m["needed_bytes"] // 1048576)
                           if m["measured"] else "not measured (%s)" % m["why"]) for m in members]
    if short:
        raise EtcdModuleError(" | ".join(short), no_space=True, members=members, summary=summary)
    return dict(changed=False, members=members, removable_bytes=0, summary=summary)


def run(mod):
    """The listing, the removal or the room check; the module's result (one exit_json, in work)."""
    p = mod.params
    names = p["members"] or mod.member_names(p["namespace"], p["statefulset"])
    if not names:
        raise EtcdModuleError("StatefulSet %s in namespace %s has 0 replicas: start etcd, then clean up" % (p["statefulset"], p["namespace"]))
    if p["room_for_snapshot"] is not None:
        if p["state"] != "listed":
            raise EtcdModuleError("room_for_snapshot only checks; it needs state=listed")
        return check_room(mod, names)
    volumes = [member_volume(mod, name) for name in names]
    # A journal anywhere: a restore is under way or was interrupted; nothing is removed anywhere.
    pending = ["%s (%s of run %s)" % (vol.journal_path + " on " + vol.member, j.get("op"), j.get("run_id"))
               for vol, j in ((vol, vol.read_journal()) for vol in volumes) if j]
    if pending:
        raise EtcdModuleError(
            "nothing removed: a restore journal is pending on %s. A restore is under way or was interrupted there; "
            "rerun that restore (it finishes or rolls back from the journal), then clean up." % ", ".join(pending))
    members, summary, removable = [], [], 0
    for vol in volumes:
        entries = plan_member(vol, p["keep_previous"])
        for entry in entries:
            if entry["path"] == vol.data_dir or posixpath.dirname(entry["path"]) != vol.root:
                raise EtcdModuleError("refusing to touch %s on %s: not a leftover beside %s" % (entry["path"], vol.member, vol.data_dir))
            if entry["action"] == "remove":
                removable += entry["bytes"]
        members.append(dict(name=vol.member, entries=entries))
    changed = False
    for vol, member in zip(volumes, members):
        for entry in member["entries"]:
            if entry["action"] == "remove" and p["state"] == "absent" and not mod.check_mode:
                vol.remove_leftover(entry["path"])
                entry["removed"] = changed = True
            line = (vol.member, entry["path"], entry["bytes"] // 1048576, entry["kind"], entry["action"],
                    " (removed)" if entry["removed"] else "")
            summary.append("%s: %s %d MiB %s: %s%s" % line)
        member["free_bytes"] = vol.free_bytes()
    hint = "" if p["state"] == "absent" else " (state=absent removes it)"
    summary.append("removable: %d MiB on %d members%s" % (removable // 1048576, len(members), hint))
    return dict(changed=changed or (p["state"] == "absent" and removable > 0 and mod.check_mode),
                members=members, removable_bytes=removable, summary=summary)


def work(mod):
    mod.exit_json(**run(mod))


ARGUMENT_SPEC = dict(
    namespace=dict(type="str", required=True),
    members=dict(type="list", elements="str"),
    statefulset=dict(type="str", default="etcd"),
    container=dict(type="str", default="etcd"),
    data_dir=dict(type="str", default="/var/lib/data"),
    staging_dir=dict(type="str"),
    remote_snapshot_path=dict(type="str"),
    state=dict(type="str", choices=["listed", "absent"], default="listed"),
    keep_previous=dict(type="bool", default=True),
    room_for_snapshot=dict(type="int"),
    timeout=dict(type="int", default=600),
)


def main():
    module = EtcdModule(argument_spec=ARGUMENT_SPEC)
    module.run(work)


if __name__ == "__main__":
    main()
