#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: etcd_verify
short_description: Prove that every etcd member of a hosted control plane serves the same data
version_added: 0.1.0
author:
  - hcp.etcd maintainers (@hcp-etcd)
description:
  - Asks EVERY member on its own endpoint, never the cluster as a whole, so that a member serving an empty or
    different store is caught even when C(endpoint health) says all is well.
  - For each member it reads C(endpoint status) (revision, cluster ID, leader), then at one common revision R
    (the lowest current revision of all members) a serializable key count (C(get --consistency=s --limit=1 --rev R), whose count is the total)
    and C(endpoint hashkv --rev R). It also checks that C(member list) shows the expected number of started members.
  - The members are consistent when all of them answer, share the cluster ID and a leader, count the same keys and
    have the same hashkv at R, and (with O(min_revision)) are not behind the snapshot they were restored from.
  - The members are asked at the same time (each read is a scan of that member's whole store, in its own pod).
  - Retries for a while, since members that have just started may still be catching up. Read only.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - hcp.etcd.etcd_tls
options:
  namespace:
    description: Control-plane namespace holding the etcd pods.
    type: str
    required: true
  members:
    description: Member pods to check. Default, every member StatefulSet O(statefulset) declares.
    type: list
    elements: str
  statefulset:
    description: The etcd StatefulSet, read when O(members) is not given.
    type: str
    default: etcd
  expect_members:
    description: Number of started members C(member list) must show. Default, the number of O(members).
    type: int
  container:
    description: Container running etcd.
    type: str
    default: etcd
  min_revision:
    description: Each member's revision must be at least this (for example the snapshot's revision).
    type: int
    default: 0
  by_data:
    description:
      - Compare the members by data (the key count and hashkv at R, each a scan of the member's whole store).
      - With V(false) only the cheap checks run (every member answers, one cluster ID, a leader, the started members, O(min_revision)),
        for a caller that compares the members by data itself, as M(hcp.etcd.etcd_snapshot) does with O(hcp.etcd.etcd_snapshot#module:compare_members)
        at the revision of the snapshot it takes. Then C(keys) and C(hash) of each member are C(null) and C(consistent) says only that.
    type: bool
    default: true
  attempts:
    description: How many times to check before reporting an inconsistency.
    type: int
    default: 20
  delay:
    description: Seconds between attempts (fractions allowed).
    type: float
    default: 3
  fail_on_inconsistent:
    description: Fail when the members are not consistent (otherwise only report).
    type: bool
    default: true
  timeout:
    description: Seconds allowed for each command in a pod.
    type: int
    default: 60
attributes:
  check_mode:
    support: full
    description: Read only; runs the same in check mode.
  diff_mode:
    support: none
    description: Returns no diff.
"""

EXAMPLES = r"""
- name: Verify every member of the restored etcd by data
  hcp.etcd.etcd_verify:
    namespace: clusters-my-cluster
    members: [etcd-0, etcd-1, etcd-2]
    min_revision: 1234
  register: verdict

- name: Print one line per member
  ansible.builtin.debug:
    var: verdict.verdict_lines
"""

RETURN = r"""
consistent:
  description: Whether every member serves the same data (see the description).
  returned: always
  type: bool
  sample: true
revision:
  description: The common revision R the members were compared at.
  returned: always
  type: int
  sample: 1000000412
members:
  description: One entry per member, with C(name), C(revision), C(keys) (at R), C(hash) (hashkv at R), C(cluster_id),
    C(member_id), C(leader), C(version), C(ok) and C(problem).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "etcd-0", "revision": 1000000412, "keys": 412, "hash": 3641842051, "cluster_id": 14841639068965178418,
    "member_id": 10276657743932975437, "leader": 10276657743932975437, "version": "3.5.16", "ok": true, "problem": ""}]
verdict_lines:
  description: One readable line per member and a final C(VERDICT) line.
  returned: always
  type: list
  elements: str
  sample: ["etcd-0: 412 keys at rev 1000000412, hashkv 3641842051: OK", "VERDICT: OK (3 members consistent)"]
"""

import time

from ansible_collections.hcp.etcd.plugins.module_utils.etcd_module import (
    ETCD_TLS_ARG_SPEC,
    EtcdMember,
    EtcdModule,
    EtcdModuleError,
    at_once,
    data_problems,
    scan_at,
)


def check_once(members, expect_members, min_revision, by_data=True):
    """One pass over every member, the members at once; returns (consistent, revision, per-member facts).
    Without ``by_data`` the members' stores are not scanned (their keys and hash are None)."""
    found = at_once([m.status for m in members] + [members[0].started_members])
    facts, started = found[:-1], len(found[-1])
    revision = min(f["revision"] for f in facts)
    scans = scan_at(members, revision) if by_data else [{"keys": None, "hash": None} for _m in members]
    for fact, scan in zip(facts, scans):
        fact.update(scan)  # keys and hash; behind or compacted for a store that could not be read at R
    reference = facts[0]
    for fact in facts:
        problems = []
        if fact["cluster_id"] != reference["cluster_id"]:
            problems.append("cluster ID %s differs from %s's %s" % (fact["cluster_id"], reference["name"], reference["cluster_id"]))
        if not fact["leader"]:
            problems.append("no leader")
        if by_data:
            problems.extend(data_problems(fact, reference))
        if fact["revision"] < min_revision:
            problems.append("revision %d is behind the snapshot's %d" % (fact["revision"], min_revision))
        if started != expect_members:
            problems.append("member list shows %d started members, expected %d" % (started, expect_members))
        fact["problem"] = "; ".join(problems)
        fact["ok"] = not problems
    return all(f["ok"] for f in facts), revision, facts


def verdict_lines(consistent, revision, facts):
    by_data = any(f["keys"] is not None for f in facts)
    lines = [
        ("%s: %d keys at rev %d, hashkv %s: %s" % (f["name"], f["keys"], revision, f["hash"], "OK" if f["ok"] else "FAIL (%s)" % f["problem"])
         if f["keys"] is not None else
         "%s: rev %d, cluster ID %s, leader %s: %s" % (f["name"], f["revision"], f["cluster_id"], f["leader"], "OK" if f["ok"] else "FAIL (%s)" % f["problem"]))
        for f in facts
    ]
    if by_data:
        lines.append("VERDICT: %s (%d members)" % ("OK, consistent" if consistent else "FAIL, members differ", len(facts)))
    else:
        lines.append("VERDICT: %s (%d members; their data not compared here)"
                     % ("OK, every member answers in one cluster with a leader" if consistent else "FAIL, members differ", len(facts)))
    return lines


def run(module):
    params = module.params
    names = params["members"] or module.member_names(params["namespace"], params["statefulset"])
    if not names:
        raise EtcdModuleError("StatefulSet %s in namespace %s has 0 replicas: etcd is stopped" % (params["statefulset"], params["namespace"]))
    expect = params["expect_members"] if params["expect_members"] is not None else len(names)
    last_error = None
    consistent, revision, facts = False, 0, []
    for attempt in range(max(1, params["attempts"])):
        if attempt:
            time.sleep(params["delay"])
        try:
            members = [EtcdMember(module, name) for name in names]
            consistent, revision, facts = check_once(members, expect, params["min_revision"], params["by_data"])
            last_error = None
        except Exception as exc:  # a member not answering yet: try again  # pylint: disable=broad-except
            last_error = exc
            continue
        if consistent:
            break
    if last_error is not None:
        raise EtcdModuleError("etcd members did not answer after %d attempts: %s" % (params["attempts"], last_error))
    result = dict(changed=False, consistent=consistent, revision=revision, members=facts,
                  verdict_lines=verdict_lines(consistent, revision, facts))
    if not consistent and params["fail_on_inconsistent"]:
        module.fail_json("etcd members of %s are not consistent: %s" % (params["namespace"], " | ".join(result["verdict_lines"])), **result)
    module.exit_json(**result)


def main():
    module = EtcdModule(
        argument_spec=dict(
            ETCD_TLS_ARG_SPEC,
            namespace=dict(type="str", required=True),
            members=dict(type="list", elements="str"),
            expect_members=dict(type="int"),
            statefulset=dict(type="str", default="etcd"),
            container=dict(type="str", default="etcd"),
            min_revision=dict(type="int", default=0),
            by_data=dict(type="bool", default=True),
            attempts=dict(type="int", default=20),
            delay=dict(type="float", default=3),
            fail_on_inconsistent=dict(type="bool", default=True),
            timeout=dict(type="int", default=60),
        ),
    )
    module.run(run)


if __name__ == "__main__":
    main()
