#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: etcd_lock
short_description: One backup or restore at a time per hosted control plane (a coordination.k8s.io Lease)
version_added: 0.2.0
author:
  - hcp.etcd maintainers (@hcp-etcd)
description:
  - Takes, renews, hands over or releases the Lease O(name) in the control-plane namespace, so that two runs
    (two AWX jobs, a rerun while an interrupted run's background jobs still work) never act on one control plane
    at the same time. Every write carries the Lease's C(resourceVersion), so two runs racing for it cannot both win.
  - The holder is written as an operator reads it (C(user@host, restore run <id>, AWX job <n>)). A run refused
    because another holds the Lease is told who holds it, since when and when it expires.
  - A Lease held by another session is taken over only when it belongs to the same run (O(run_id); a rerun of an
    interrupted restore finds the run id in the run record) AND it expired or its run stopped
    (O(state=stopped)), or when O(break_lock=true).
options:
  namespace:
    description: The control-plane namespace.
    type: str
    required: true
  name:
    description: Name of the Lease.
    type: str
    default: hcp-etcd-lock
  state:
    description:
      - C(acquired) takes the Lease (or renews it when O(session) is the session that holds it).
      - C(stopped) keeps the Lease but marks its run as stopped (no process of it works any more), so that a rerun
        of the same run takes it over at once while other runs stay refused.
      - C(released) deletes the Lease when O(session) holds it; otherwise changes nothing.
    type: str
    choices: [acquired, stopped, released]
    default: acquired
  run_id:
    description: Id of the run (a restore's run id from its run record; a new id for a backup).
    type: str
    required: true
  operation:
    description: What the run does, shown to a refused run.
    type: str
    default: restore
  session:
    description: The session returned when the Lease was taken; empty takes it as a new session.
    type: str
    default: ""
  user:
    description: Who runs it (for example AWX's C(awx_user_name)); default the controller's user.
    type: str
  duration:
    description:
      - Seconds the Lease lasts without renewal. It must exceed the longest step between two renewals, so that an
        interrupted run's background jobs are over before its rerun may take the Lease over.
    type: int
    default: 1800
  break_lock:
    description: Take the Lease whoever holds it. Only when the holder named in the refusal is known to be gone.
    type: bool
    default: false
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    support: none
    description: Not supported; the Lease is the guard of the run.
  diff_mode:
    support: none
    description: Returns no diff.
"""

EXAMPLES = r"""
- name: Take the control plane's run lock
  hcp.etcd.etcd_lock:
    namespace: clusters-my-cluster
    run_id: "2026-11-26T05:30:00Z"
    operation: restore
    user: "{{ awx_user_name | default(omit) }}"
  register: lock

- name: Renew it at a phase boundary
  hcp.etcd.etcd_lock:
    namespace: clusters-my-cluster
    run_id: "2026-11-26T05:30:00Z"
    session: "{{ lock.session }}"

- name: Release it
  hcp.etcd.etcd_lock:
    namespace: clusters-my-cluster
    run_id: "2026-11-26T05:30:00Z"
    session: "{{ lock.session }}"
    state: released
"""

RETURN = r"""
session:
  description: The session that holds the Lease (pass it to renew, stop or release).
  returned: always
  type: str
  sample: 3f1c9a0e5b7d4e2a8c6b1d0f9e8a7c6b
holder:
  description: The holder written into the Lease (C(spec.holderIdentity)).
  returned: always
  type: str
  sample: alice@bastion-1, restore run 2026-11-26T05:30:00Z, AWX job 42
taken_over:
  description: The previous holder when the Lease was taken over, else empty.
  returned: always
  type: str
  sample: held by bob@bastion-2, restore run 2026-11-26T04:00:00Z, since 2026-11-26T04:00:00Z (5400 s ago), renewed 3600 s ago, expired 1800 s ago
api_server:
  description: URL of the API server the module talked to (the one every task of the run acts on).
  returned: always
  type: str
  sample: https://api.mgmt.example.com:6443
"""

import datetime
import getpass
import json
import os
import socket
import uuid

from ansible.module_utils.common.text.converters import to_text
from ansible_collections.hcp.etcd.plugins.module_utils.etcd_module import (
    ApiException,
    EtcdModule,
    EtcdModuleError,
    utc_now,
)

PREFIX = "hcp.etcd/"
MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"


def micro_time(moment):
    return moment.strftime(MICRO)


def parse_time(text):
    """A Lease MicroTime (or Time) as an aware datetime; None when absent or unreadable."""
    if not text:
        return None
    text = text.rstrip("Z").split("+")[0]
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.datetime.strptime(text, fmt).replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            continue
    return None


def holder_identity(user, operation, run_id, environ=None):
    """``alice@bastion, restore run 2026-11-26T05:30:00Z, AWX job 42``: who to ask before breaking the lock."""
    environ = os.environ if environ is None else environ
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # a container user without a passwd entry (AWX execution environments)
            user = "uid %d" % os.getuid()
    text = "%s@%s, %s run %s" % (user, socket.gethostname(), operation, run_id)
    job = environ.get("JOB_ID") or environ.get("AWX_JOB_ID")
    if job:
        text += ", AWX job %s" % job
    return text


def describe(lease, now):
    """How a refused run is told about the holder: who, since when, last renewal, expiry."""
    spec = lease.get("spec") or {}
    acquired = parse_time(spec.get("acquireTime"))
    renewed = parse_time(spec.get("renewTime")) or acquired
    ann = (lease.get("metadata") or {}).get("annotations") or {}
    parts = ["held by %s" % (spec.get("holderIdentity") or "an unknown holder")]
    if acquired:
        parts.append("since %s (%d s ago)" % (micro_time(acquired)[:19] + "Z", (now - acquired).total_seconds()))
    if ann.get(PREFIX + "state") == "stopped":
        parts.append("its run stopped without finishing")
    elif renewed:
        left = (renewed - now).total_seconds() + int(spec.get("leaseDurationSeconds") or 0)
        parts.append("renewed %d s ago, %s" % ((now - renewed).total_seconds(),
                                               "expires in %d s" % left if left > 0 else "expired %d s ago" % -left))
    return ", ".join(parts)


def decide(lease, now, run_id, session, break_lock):
    """What to do with the Lease as it is: ``create``, ``renew``, ``take`` or raise naming the holder."""
    if lease is None:
        return "create"
    ann = (lease.get("metadata") or {}).get("annotations") or {}
    spec = lease.get("spec") or {}
    if session and ann.get(PREFIX + "session") == session:
        return "renew"
    if session:
        raise EtcdModuleError(
            "the run lock of this control plane was taken over while this run held it: now %s. Stop here; "
            "find out who broke the lock before going on" % describe(lease, now)
        )
    renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    expired = renewed is None or (now - renewed).total_seconds() > int(spec.get("leaseDurationSeconds") or 0)
    stopped = ann.get(PREFIX + "state") == "stopped"
    if break_lock or (ann.get(PREFIX + "run-id") == run_id and (expired or stopped)):
        return "take"
    same_run = ann.get(PREFIX + "run-id") == run_id
    raise EtcdModuleError(
        "another backup or restore of this control plane runs: the run lock (Lease %s/%s) is %s. %s"
        % (lease["metadata"].get("namespace"), lease["metadata"].get("name"), describe(lease, now),
           "It is held for this same run (the run id of the run record): if that run was interrupted, its background "
           "jobs may still work; rerun once the lock expired. "
           if same_run else "Wait until it ends and rerun. ")
        + "If that run is known to be gone, rerun with -e break_lock=true.",
        holder=spec.get("holderIdentity", ""),
    )


def lease_body(namespace, name, holder, run_id, operation, session, duration, now, previous=None, state="running"):
    """The Lease to write: a new one, or ``previous`` with a new holder or renewal (its resourceVersion kept)."""
    body = json.loads(json.dumps(previous)) if previous else {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "hcp.etcd"}},
        "spec": {"leaseTransitions": 0},
    }
    spec = body.setdefault("spec", {})
    meta = body.setdefault("metadata", {})
    new_holder = not previous or (meta.get("annotations") or {}).get(PREFIX + "session") != session
    if new_holder:
        if previous:
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec["acquireTime"] = micro_time(now)
    spec.update(holderIdentity=holder, leaseDurationSeconds=int(duration), renewTime=micro_time(now))
    meta["annotations"] = dict(meta.get("annotations") or {})
    meta["annotations"].update({PREFIX + "run-id": run_id, PREFIX + "operation": operation,
                                PREFIX + "session": session, PREFIX + "state": state})
    return body


class LeaseApi(object):
    """The four Lease calls, as plain dicts, with the resourceVersion as precondition of every write."""

    def __init__(self, api_client, namespace, name):
        from kubernetes.client import CoordinationV1Api

        self.api = CoordinationV1Api(api_client)
        self.namespace = namespace
        self.name = name

    @staticmethod
    def _json(response):
        return json.loads(to_text(response.data))

    def get(self):
        try:
            return self._json(self.api.read_namespaced_lease(self.name, self.namespace, _preload_content=False))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, body):
        return self._json(self.api.create_namespaced_lease(self.namespace, body, _preload_content=False))

    def replace(self, body):
        return self._json(self.api.replace_namespaced_lease(self.name, self.namespace, body, _preload_content=False))

    def delete(self, resource_version):
        from kubernetes.client import V1DeleteOptions, V1Preconditions

        self.api.delete_namespaced_lease(
            self.name, self.namespace,
            body=V1DeleteOptions(preconditions=V1Preconditions(resource_version=resource_version)))


def run_lock(params, api, now_fn=utc_now, new_session=None):
    """The module's logic over ``api`` (a LeaseApi or a fake); the result dict."""
    state, run_id, session = params["state"], params["run_id"], params["session"] or ""
    holder = holder_identity(params.get("user"), params["operation"], run_id)
    result = dict(changed=False, session=session, holder=holder, taken_over="")
    for _attempt in range(3):  # a write that lost a race (409) decides again on what is there now
        lease = api.get()
        now = now_fn()
        try:
            if state == "released" or state == "stopped":
                ann = ((lease or {}).get("metadata") or {}).get("annotations") or {}
                if lease is None or not session or ann.get(PREFIX + "session") != session:
                    return result  # nothing of ours to release: never touch another run's Lease
                if state == "released":
                    api.delete(lease["metadata"]["resourceVersion"])
                else:
                    api.replace(lease_body(api.namespace, api.name, holder, run_id, params["operation"], session,
                                           params["duration"], now, previous=lease, state="stopped"))
                result["changed"] = True
                return result
            action = decide(lease, now, run_id, session, params["break_lock"])
            if action == "create":
                session = session or new_session or uuid.uuid4().hex
                api.create(lease_body(api.namespace, api.name, holder, run_id, params["operation"], session,
                                      params["duration"], now))
            else:
                if action == "take":
                    result["taken_over"] = describe(lease, now)
                    session = new_session or uuid.uuid4().hex
                api.replace(lease_body(api.namespace, api.name, holder, run_id, params["operation"], session,
                                       params["duration"], now, previous=lease))
            result.update(changed=True, session=session)
            return result
        except ApiException as exc:
            if exc.status != 409:
                raise
    raise EtcdModuleError("the run lock (Lease %s/%s) kept changing while this run tried to take it: another run is "
                          "starting; rerun in a minute" % (api.namespace, api.name))


def main():
    mod = EtcdModule(
        dict(
            namespace=dict(type="str", required=True),
            name=dict(type="str", default="hcp-etcd-lock"),
            state=dict(type="str", default="acquired", choices=["acquired", "stopped", "released"]),
            run_id=dict(type="str", required=True),
            operation=dict(type="str", default="restore"),
            session=dict(type="str", default="", no_log=False),
            user=dict(type="str"),
            duration=dict(type="int", default=1800),
            break_lock=dict(type="bool", default=False),
        ),
        supports_check_mode=False,
    )

    def work(m):
        api_client = m.kube_client
        api = LeaseApi(api_client, m.params["namespace"], m.params["name"])
        result = run_lock(m.params, api)
        if result["taken_over"]:
            m.warn("took over the run lock %s" % result["taken_over"])
        m.exit_json(api_server=api_client.configuration.host, **result)

    mod.run(work)


if __name__ == "__main__":
    main()
