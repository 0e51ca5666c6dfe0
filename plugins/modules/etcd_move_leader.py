#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: etcd_move_leader
short_description: Hand etcd's leadership to one member, so that the members can stop leader last
version_added: 0.3.0
author:
  - hcp.etcd maintainers (@hcp-etcd)
description:
  - Asks every member for its status on its own endpoint, finds the leader, and when the leader is not O(to) runs
    C(etcdctl move-leader) on the leader, then waits until O(to) reports itself as the leader.
  - Why. An etcd leader that receives SIGTERM first hands its leadership to the follower connected longest. When a
    StatefulSet stops every member at once, that follower is stopping too, and the leader waits for the hand-over
    until its request timeout (5 s plus two election timeouts; about 8 s in all for the member to stop). A StatefulSet
    removes its highest ordinals first when it is scaled down, so with the leadership on member 0, scaling to 1 stops
    the followers (at once, as followers do) and scaling to 0 then stops a leader that has no follower left to wait for.
  - Changes only which member leads; no data, no membership. The restore role uses it as an optimisation and goes on
    when it fails (a broken etcd is what a restore is for).
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - hcp.etcd.etcd_tls
options:
  namespace:
    description: Control-plane namespace holding the etcd pods.
    type: str
    required: true
  to:
    description: Member pod that should lead. Default, member 0 of O(statefulset) (the one a scale-down stops last).
    type: str
  statefulset:
    description: The etcd StatefulSet, read for its members.
    type: str
    default: etcd
  container:
    description: Container running etcd.
    type: str
    default: etcd
  timeout:
    description: Seconds allowed for each command in a pod, and for O(to) to report the leadership.
    type: int
    default: 30
attributes:
  check_mode:
    support: full
    description: Reads the leader and reports whether it would move it; moves nothing.
  diff_mode:
    support: none
    description: Returns no diff.
"""

EXAMPLES = r"""
- name: Let member 0 lead, so that scaling etcd to 1 and then to 0 stops the leader last
  hcp.etcd.etcd_move_leader:
    namespace: clusters-my-cluster
  register: leadership
  failed_when: false  # only an optimisation of the stop that follows
"""

RETURN = r"""
moved:
  description: Whether the leadership was handed over by this run.
  returned: always
  type: bool
  sample: true
leader_before:
  description: Member pod that led before, when it answered (null when the leader was not found).
  returned: always
  type: str
  sample: etcd-2
leader:
  description: Member pod that leads now (O(to) unless nothing was moved in check mode).
  returned: always
  type: str
  sample: etcd-0
"""

import time

from ansible_collections.hcp.etcd.plugins.module_utils.etcd_module import ETCD_TLS_ARG_SPEC, EtcdMember, EtcdModule, EtcdModuleError


def move_leadership(members, target, check_mode=False, timeout=30, sleep=time.sleep):
    """Hand the leadership to the member named ``target`` (``members``: objects with ``name``,
    ``status()`` and ``move_leader(member_id)``). Returns the module result."""
    by_name = dict((m.name, m) for m in members)
    statuses, errors = {}, []
    for member in members:
        try:
            statuses[member.name] = member.status()
        except Exception as exc:  # a member that does not answer cannot lead: go on with the others  # pylint: disable=broad-except
            errors.append("%s: %s" % (member.name, exc))
    if target not in statuses:
        raise EtcdModuleError("member %s does not answer, so it cannot take the leadership (%s)" % (target, "; ".join(errors)))
    target_id = statuses[target]["member_id"]
    leader_id = statuses[target]["leader"]
    name_of = dict((s["member_id"], name) for name, s in statuses.items())
    before = name_of.get(leader_id)
    if leader_id == target_id:
        return dict(changed=False, moved=False, leader_before=target, leader=target, msg="%s leads already" % target)
    if before is None:
        raise EtcdModuleError(
            "%s names member ID %s as the leader, which is not one of the members that answered (%s)"
            % (target, leader_id, "; ".join(errors) or ", ".join(sorted(statuses)))
        )
    if check_mode:
        return dict(changed=True, moved=False, leader_before=before, leader=before, msg="would move the leadership from %s to %s" % (before, target))
    by_name[before].move_leader(target_id)
    deadline = time.time() + timeout
    while by_name[target].status()["leader"] != target_id:
        if time.time() > deadline:
            raise EtcdModuleError("%s did not report itself as the leader within %d s after move-leader on %s" % (target, timeout, before))
        sleep(0.2)
    return dict(changed=True, moved=True, leader_before=before, leader=target, msg="moved the leadership from %s to %s" % (before, target))


def run(module):
    params = module.params
    names = module.member_names(params["namespace"], params["statefulset"])
    target = params["to"] or "%s-0" % params["statefulset"]
    if len(names) < 2:
        module.exit_json(changed=False, moved=False, leader_before=None, leader=None,
                         msg="StatefulSet %s has %d member(s): no leadership to hand over" % (params["statefulset"], len(names)))
    if target not in names:
        raise EtcdModuleError("%s is not a member of StatefulSet %s (members: %s); set to to one of them" % (target, params["statefulset"], ", ".join(names)))
    members = [EtcdMember(module, name) for name in names]
    module.exit_json(**move_leadership(members, target, module.check_mode, params["timeout"]))


def main():
    module = EtcdModule(
        argument_spec=dict(
            ETCD_TLS_ARG_SPEC,
            namespace=dict(type="str", required=True),
            to=dict(type="str"),
            statefulset=dict(type="str", default="etcd"),
            container=dict(type="str", default="etcd"),
            timeout=dict(type="int", default=30),
        ),
    )
    module.run(run)


if __name__ == "__main__":
    main()
