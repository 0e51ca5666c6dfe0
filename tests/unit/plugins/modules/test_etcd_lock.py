# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run lock: who may take the Lease, what a refused run is told, and that every write is conditional."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import datetime

import pytest

from ansible_collections.hcp.etcd.plugins.module_utils.etcd_module import ApiException, EtcdModuleError
from ansible_collections.hcp.etcd.plugins.modules import etcd_lock

T0 = datetime.datetime(2026, 11, 29, 10, 0, 0, tzinfo=datetime.timezone.utc)


class FakeLeases(object):
    """One Lease with resourceVersion semantics: a write with a stale resourceVersion is a 409."""

    namespace = "clusters-demo"
    name = "hcp-etcd-lock"

    def __init__(self):
        self.lease = None
        self.rv = 0
        self.before_write = None  # hook: another run writes between our read and our write

    def _conflict(self):
        exc = ApiException()
        exc.status = 409
        return exc

    def _store(self, body):
        self.rv += 1
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(self.rv)
        return copy.deepcopy(self.lease)

    def _hook(self):
        if self.before_write:
            hook, self.before_write = self.before_write, None
            hook(self)

    def get(self):
        return copy.deepcopy(self.lease)

    def create(self, body):
        self._hook()
        if self.lease is not None:
            raise self._conflict()
        assert "resourceVersion" not in body["metadata"]
        return self._store(body)

    def replace(self, body):
        self._hook()
        if self.lease is None or body["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise self._conflict()
        return self._store(body)

    def delete(self, resource_version):
        self._hook()
        if self.lease is None or resource_version != self.lease["metadata"]["resourceVersion"]:
            raise self._conflict()
        self.lease = None

    def save_record(self, name, data, labels):
        self.records = getattr(self, "records", [])
        self.records.append((name, data, labels))
        return str(len(self.records))


def lock(api, at=T0, **params):
    base = dict(state="acquired", run_id="run-A", operation="restore", session="", user="alice",
                duration=600, break_lock=False)
    base.update(params)
    return etcd_lock.run_lock(base, api, now_fn=lambda: at)


def later(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


def test_free_lease_is_taken_with_an_operator_readable_holder(monkeypatch):
    monkeypatch.setenv("JOB_ID", "42")
    api = FakeLeases()
    result = lock(api)
    assert result["changed"] and result["session"]
    spec = api.lease["spec"]
    assert spec["holderIdentity"].startswith("alice@") and "restore run run-A" in spec["holderIdentity"]
    assert spec["holderIdentity"].endswith("AWX job 42")
    assert spec["leaseDurationSeconds"] == 600 and spec["acquireTime"] == "2026-11-29T10:00:00.000000Z"
    assert api.lease["metadata"]["annotations"]["hcp.etcd/session"] == result["session"]


def test_second_run_is_refused_naming_holder_and_age():
    api = FakeLeases()
    lock(api)
    holder = api.lease["spec"]["holderIdentity"]
    with pytest.raises(EtcdModuleError) as err:
        lock(api, at=later(125), run_id="run-B", user="bob")
    msg = str(err.value)
    assert "held by %s" % holder in msg and "since 2026-11-29T10:00:00Z (125 s ago)" in msg
    assert "expires in 475 s" in msg and "-e break_lock=true" in msg
    assert api.lease["spec"]["holderIdentity"] == holder  # untouched


def test_expired_lease_of_another_run_still_needs_break_lock():
    api = FakeLeases()
    lock(api)
    with pytest.raises(EtcdModuleError, match="expired 400 s ago"):
        lock(api, at=later(1000), run_id="run-B")
    result = lock(api, at=later(1000), run_id="run-B", break_lock=True)
    assert "held by alice@" in result["taken_over"]
    assert api.lease["metadata"]["annotations"]["hcp.etcd/run-id"] == "run-B"
    assert api.lease["spec"]["leaseTransitions"] == 1


def test_same_run_takes_over_only_once_expired_or_stopped():
    api = FakeLeases()
    first = lock(api)
    # a rerun of the same run while the interrupted one may still work (Ctrl-C, async jobs): refused
    with pytest.raises(EtcdModuleError, match="held for this same run .* if that run was interrupted"):
        lock(api, at=later(60))
    # once expired, its rerun takes it over by itself
    rerun = lock(api, at=later(601))
    assert rerun["session"] != first["session"] and rerun["taken_over"]
    # a run that stopped (failure not recovered) hands it to its rerun at once
    lock(api, at=later(602), session=rerun["session"], state="stopped")
    assert api.lease["metadata"]["annotations"]["hcp.etcd/state"] == "stopped"
    with pytest.raises(EtcdModuleError, match="its run stopped without finishing"):
        lock(api, at=later(603), run_id="run-B")
    assert lock(api, at=later(603))["taken_over"]


def test_renewal_moves_renew_time_and_keeps_acquire_time():
    api = FakeLeases()
    first = lock(api)
    result = lock(api, at=later(300), session=first["session"])
    assert result["session"] == first["session"] and not result["taken_over"]
    assert api.lease["spec"]["renewTime"] == "2026-11-29T10:05:00.000000Z"
    assert api.lease["spec"]["acquireTime"] == "2026-11-29T10:00:00.000000Z"


def test_renewal_after_the_lock_was_broken_fails_loudly():
    api = FakeLeases()
    first = lock(api)
    lock(api, at=later(10), run_id="run-B", user="bob", break_lock=True)
    with pytest.raises(EtcdModuleError, match="taken over while this run held it: now held by bob@"):
        lock(api, at=later(20), session=first["session"])


def test_release_deletes_only_our_own_lease():
    api = FakeLeases()
    first = lock(api)
    assert lock(api, state="released", session="someone-else")["changed"] is False
    assert lock(api, state="released", session="")["changed"] is False
    assert api.lease is not None
    assert lock(api, state="released", session=first["session"])["changed"] is True
    assert api.lease is None
    assert lock(api, state="released", session=first["session"])["changed"] is False


def test_race_between_read_and_create_is_lost_not_overwritten():
    api = FakeLeases()

    def other_run(fake):
        lock(fake, run_id="run-B", user="bob")

    api.before_write = other_run
    with pytest.raises(EtcdModuleError, match="held by bob@"):
        lock(api)
    assert api.lease["metadata"]["annotations"]["hcp.etcd/run-id"] == "run-B"


def test_race_between_read_and_takeover_is_lost_not_overwritten():
    api = FakeLeases()
    lock(api)

    def other_run(fake):
        lock(fake, at=later(5), run_id="run-C", user="carol", break_lock=True)

    api.before_write = other_run
    with pytest.raises(EtcdModuleError, match="held by carol@"):
        lock(api, at=later(1000))  # the expired lease of run-A, but carol took it first
    assert api.lease["metadata"]["annotations"]["hcp.etcd/run-id"] == "run-C"


def test_lease_times_parse_server_formats():
    assert etcd_lock.parse_time("2026-11-29T10:00:00.123456Z") == T0.replace(microsecond=123456)
    assert etcd_lock.parse_time("2026-11-29T10:00:00Z") == T0
    assert etcd_lock.parse_time("") is None


def test_holder_without_a_passwd_entry_is_named_by_uid(monkeypatch):
    def no_user():
        raise KeyError("getpwuid(): uid not found: 1000680000")

    monkeypatch.setattr(etcd_lock.getpass, "getuser", no_user)
    assert etcd_lock.holder_identity(None, "backup", "r1", environ={}).startswith("uid ")


def record_lock(api, at=T0, **params):
    base = dict(state="acquired", run_id="run-A", operation="restore", session="", user="alice",
                duration=600, break_lock=False, record_name="hcp-etcd-restore", record_labels={"a": "b"})
    base.update(params)
    return etcd_lock.lock_and_record(base, api, now_fn=lambda: at)


def test_renewal_saves_the_run_record_in_the_same_module_run_as_text():
    api = FakeLeases()
    first = record_lock(api)
    result = record_lock(api, at=later(30), session=first["session"],
                         record={"phase": "members-restored", "etcd_replicas": 3, "api": {"kube-apiserver": 2}})
    assert result["changed"] and result["record_version"] == "1"
    assert api.records == [("hcp-etcd-restore", {"phase": "members-restored", "etcd_replicas": "3",
                                                 "api": '{"kube-apiserver": 2}'}, {"a": "b"})]
    assert api.lease["spec"]["renewTime"] == "2026-11-29T10:00:30.000000Z"


def test_a_run_whose_lock_was_broken_never_writes_the_run_record():
    api = FakeLeases()
    first = record_lock(api)
    record_lock(api, at=later(10), run_id="run-B", user="bob", break_lock=True)
    with pytest.raises(EtcdModuleError, match="now held by bob@"):
        record_lock(api, at=later(20), session=first["session"], record={"phase": "verified"})
    assert getattr(api, "records", []) == []


def test_the_run_record_is_written_only_with_the_lease_taken():
    api = FakeLeases()
    with pytest.raises(EtcdModuleError, match="only with state=acquired"):
        record_lock(api, state="released", record={"phase": "verified"})
    assert api.lease is None


class FakeDynamic(object):
    """kubernetes.core's K8SClient over one namespace: objects by (kind, name), resourceVersion checked."""

    class Obj(object):
        def __init__(self, body):
            self.body = body

        def to_dict(self):
            return copy.deepcopy(self.body)

    def __init__(self):
        self.objects, self.rv, self.calls = {}, 0, []

    def resource(self, kind, api_version):
        return kind

    def _error(self, status):
        exc = ApiException()
        exc.status = status
        return exc

    def get(self, kind, name, namespace):
        self.calls.append(("get", kind, name))
        if (kind, name) not in self.objects:
            raise self._error(404)
        return self.Obj(self.objects[(kind, name)])

    def _store(self, kind, body):
        self.rv += 1
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[(kind, body["metadata"]["name"])] = body
        return self.Obj(body)

    def create(self, kind, body, namespace):
        self.calls.append(("create", kind, body["metadata"]["name"]))
        if (kind, body["metadata"]["name"]) in self.objects:
            raise self._error(409)
        return self._store(kind, body)

    def replace(self, kind, body, name, namespace):
        self.calls.append(("replace", kind, name))
        current = self.objects.get((kind, name))
        if current is None or body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise self._error(409)
        return self._store(kind, body)


def test_lease_api_saves_the_record_whole_created_then_replaced_at_its_resource_version():
    client = FakeDynamic()
    api = etcd_lock.LeaseApi(client, "clusters-demo", "hcp-etcd-lock")
    assert api.get() is None
    assert api.save_record("hcp-etcd-restore", {"phase": "started", "old": "x"}, {"hcp.etcd/role": "restore-record"}) == "1"
    assert api.save_record("hcp-etcd-restore", {"phase": "verified"}, {"hcp.etcd/role": "restore-record"}) == "2"
    saved = client.objects[("ConfigMap", "hcp-etcd-restore")]
    assert saved["data"] == {"phase": "verified"}  # replaced whole: a key the record dropped is gone
    assert saved["metadata"]["labels"] == {"hcp.etcd/role": "restore-record"}
    assert [c[0] for c in client.calls if c[1] == "ConfigMap"] == ["get", "create", "get", "replace"]
