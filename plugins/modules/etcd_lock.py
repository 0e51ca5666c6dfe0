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
  record:
    description:
      - The run record to save after the Lease is taken or renewed, in the same module run, as the data of
        ConfigMap O(record_name) (created, or replaced whole). A run whose lock was broken by another fails before
        this write, so it never writes over the other run's record. Values that are not text are stored as JSON.
      - Only with O(state=acquired).
    type: dict
  record_name:
    description: Name of the run record ConfigMap in O(namespace).
    type: str
    default: hcp-etcd-restore
  record_labels:
    description: Labels of the run record ConfigMap.
    type: dict
    default: {}
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

- name: Renew it at a phase boundary and save the run record there, in one module run
  hcp.etcd.etcd_lock:
    namespace: clusters-my-cluster
    run_id: "2026-11-26T05:30:00Z"
    session: "{{ lock.session }}"
    record:
      phase: members-restored
      started_at: "2026-11-26T05:30:00Z"

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
record_version:
  description: The C(resourceVersion) of the run record ConfigMap written (O(record)), else empty.
  returned: always
  type: str
  sample: "48213"
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
    DynamicApiError,
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
    """The Lease calls and the run record write, as plain dicts, over kubernetes.core's client (dynamic
    resources). Every Lease write carries the resourceVersion read before it as its precondition."""

    def __init__(self, client, namespace, name):
        self.client = client  # kubernetes.core K8SClient
        self.namespace = namespace
        self.name = name
        self._leases = client.resource("Lease", "coordination.k8s.io/v1")

    def get(self):
        try:
            return self.client.get(self._leases, name=self.name, namespace=self.namespace).to_dict()
        except (ApiException, DynamicApiError) as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise

    def create(self, body):
        return self.client.create(self._leases, body, namespace=self.namespace).to_dict()

    def replace(self, body):
        return self.client.replace(self._leases, body, name=self.name, namespace=self.namespace).to_dict()

    def delete(self, resource_version):
        self.client.delete(self._leases, name=self.name, namespace=self.namespace,
                           body={"apiVersion": "v1", "kind": "DeleteOptions",
                                 "preconditions": {"resourceVersion": resource_version}})

    def save_record(self, name, data, labels):
        """Write ConfigMap ``name`` with exactly ``data`` (created, or replaced whole); its resourceVersion."""
        config_maps = self.client.resource("ConfigMap", "v1")
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": self.namespace, "labels": dict(labels or {})},
                "data": data}
        try:
            current = self.client.get(config_maps, name=name, namespace=self.namespace).to_dict()
        except (ApiException, DynamicApiError) as exc:
            if getattr(exc, "status", None) != 404:
                raise
            current = None
        if current is None:
            return self.client.create(config_maps, body, namespace=self.namespace).to_dict()["metadata"]["resourceVersion"]
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return self.client.replace(config_maps, body, name=name, namespace=self.namespace).to_dict()["metadata"]["resourceVersion"]


def record_data(record):
    """The run record as ConfigMap data: every value a string (text as is, anything else as JSON)."""
    return dict((to_text(k), v if isinstance(v, str) else json.dumps(v)) for k, v in (record or {}).items())


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
        except (ApiException, DynamicApiError) as exc:
            if getattr(exc, "status", None) != 409:
                raise
    raise EtcdModuleError("the run lock (Lease %s/%s) kept changing while this run tried to take it: another run is "
                          "starting; rerun in a minute" % (api.namespace, api.name))


def lock_and_record(params, api, now_fn=utc_now, new_session=None):
    """``run_lock``, then the run record (``record``) when given: only after the Lease is ours, so a run whose
    lock was broken fails before it could write over the other run's record."""
    if params.get("record") is not None and params["state"] != "acquired":
        raise EtcdModuleError("record is written only with state=acquired (after the Lease is taken or renewed)")
    result = run_lock(params, api, now_fn=now_fn, new_session=new_session)
    result["record_version"] = ""
    if params.get("record") is not None:
        result["record_version"] = api.save_record(params["record_name"], record_data(params["record"]),
                                                   params.get("record_labels"))
        result["changed"] = True
    return result


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
            record_name=dict(type="str", default="hcp-etcd-restore"),
            record=dict(type="dict"),
            record_labels=dict(type="dict", default={}),
        ),
        supports_check_mode=False,
    )

    def work(m):
        result = lock_and_record(m.params, LeaseApi(m.api_client, m.params["namespace"], m.params["name"]))
        if result["taken_over"]:
            m.warn("took over the run lock %s" % result["taken_over"])
        m.exit_json(api_server=m.api_client.configuration.host, **result)

    mod.run(work)


if __name__ == "__main__":
    main()
