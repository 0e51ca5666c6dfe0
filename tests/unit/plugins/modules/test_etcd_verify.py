# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-member proof of etcd_verify: every member's own key count and hashkv at one revision, the members
asked at the same time, and a member that serves other data (an empty store) named as failing."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading

import pytest

from ansible_collections.hcp.etcd.plugins.module_utils.etcd_module import EtcdMember
from ansible_collections.hcp.etcd.plugins.modules.etcd_verify import check_once, verdict_lines

CLUSTER_ID = 14841639068965178418


class FakeMember(object):
    """One member's answers; ``barrier`` (when set) must be met by every member inside its scans."""

    def __init__(self, name, revision, keys, kv_hash, barrier=None, started=3):
        self.name, self.revision, self.keys, self.kv_hash = name, revision, keys, kv_hash
        self.barrier = barrier
        self.started = started
        self.scanned_at = []

    def status(self):
        return {"name": self.name, "revision": self.revision, "cluster_id": CLUSTER_ID, "member_id": hash(self.name),
                "leader": 1, "version": "3.6.5"}

    def started_members(self):
        return [{"name": "etcd-%d" % i} for i in range(self.started)]

    def keys_at(self, revision):
        if self.barrier is not None:
            self.barrier.wait(timeout=5)  # raises BrokenBarrierError when the members are asked one after another
        self.scanned_at.append(revision)
        return self.keys

    def hash_at(self, revision):
        return self.kv_hash

    scan = EtcdMember.scan


def members(*answers, **kwargs):
    return [FakeMember("etcd-%d" % i, *answer, **kwargs) for i, answer in enumerate(answers)]


def test_consistent_members_are_compared_at_the_lowest_revision():
    found = members((105, 412, 3641842051), (107, 412, 3641842051), (106, 412, 3641842051))
    consistent, revision, facts = check_once(found, 3, 100)
    assert consistent and revision == 105
    assert [m.scanned_at for m in found] == [[105], [105], [105]]
    assert [(f["name"], f["keys"], f["hash"], f["ok"]) for f in facts] == [
        ("etcd-0", 412, 3641842051, True), ("etcd-1", 412, 3641842051, True), ("etcd-2", 412, 3641842051, True)]
    assert verdict_lines(consistent, revision, facts)[-1] == "VERDICT: OK, consistent (3 members)"


def test_a_member_serving_an_empty_store_fails_by_name_although_it_answers():
    found = members((105, 412, 3641842051), (105, 0, 1084519789), (105, 412, 3641842051))
    consistent, _revision, facts = check_once(found, 3, 100)
    assert not consistent
    assert [f["ok"] for f in facts] == [True, False, True]
    assert facts[1]["problem"] == "0 keys, etcd-0 has 412; hashkv 1084519789 differs from etcd-0's 3641842051"


def test_a_member_behind_the_snapshot_or_a_missing_member_fails():
    consistent, _revision, facts = check_once(members((99, 1, 7), (99, 1, 7), (99, 1, 7)), 3, 100)
    assert not consistent and "behind the snapshot's 100" in facts[0]["problem"]
    consistent, _revision, facts = check_once(members((105, 1, 7), (105, 1, 7), started=2), 3, 100)
    assert not consistent and "2 started members, expected 3" in facts[0]["problem"]


def test_the_members_are_scanned_at_the_same_time():
    """Each scan reads a member's whole store (45 s for three members of 2.4 GiB one after another): every member
    must be inside its scan at once for any of them to finish."""
    barrier = threading.Barrier(3)
    found = members((105, 412, 1), (105, 412, 1), (105, 412, 1), barrier=barrier)
    consistent, _revision, _facts = check_once(found, 3, 0)
    assert consistent and not barrier.broken


def test_a_member_that_does_not_answer_raises_for_a_retry():
    found = members((105, 412, 1), (105, 412, 1))

    def refuse():
        raise RuntimeError("context deadline exceeded")

    found[1].status = refuse
    with pytest.raises(RuntimeError, match="deadline"):
        check_once(found, 2, 0)


def test_without_by_data_no_store_is_scanned_and_the_verdict_says_so():
    """by_data=False (the backup's pre-flight, which compares every member with the snapshot instead): status and
    member list only, no scan of any store, and the lines do not claim a comparison by data."""
    found = members((105, 412, 1), (107, 0, 2), (106, 412, 1))
    consistent, revision, facts = check_once(found, 3, 0, by_data=False)
    assert consistent and revision == 105
    assert [m.scanned_at for m in found] == [[], [], []]
    assert [(f["keys"], f["hash"]) for f in facts] == [(None, None)] * 3
    lines = verdict_lines(consistent, revision, facts)
    assert lines[0] == "etcd-0: rev 105, cluster ID %d, leader 1: OK" % CLUSTER_ID
    assert lines[-1] == "VERDICT: OK, every member answers in one cluster with a leader (3 members; their data not compared here)"
    consistent, _revision, facts = check_once(members((105, 1, 7), (105, 1, 7), started=2), 3, 0, by_data=False)
    assert not consistent and "2 started members, expected 3" in facts[0]["problem"]


def test_a_member_compacted_past_the_common_revision_fails_by_name_instead_of_not_answering():
    """A member restored alone from an older snapshot keeps another history: at the lowest revision of the others
    its store answers 'compacted'. That is a difference by data, named, not a member that does not answer."""
    from ansible_collections.hcp.etcd.plugins.module_utils.pod_transport import PodTransportError

    found = members((105, 412, 1), (105, 412, 1), (900, 7, 2))

    def compacted(revision):
        raise PodTransportError("etcdctl get failed (rc=1): mvcc: required revision has been compacted")

    found[2].keys_at = compacted
    consistent, _revision, facts = check_once(found, 3, 0)
    assert not consistent and [f["ok"] for f in facts] == [True, True, False]
    assert facts[2]["problem"] == "its store was compacted past the revision etcd-0 was read at: another store"
    assert verdict_lines(consistent, 105, facts)[2].startswith("etcd-2: rev 900, cluster ID")
    found[0].keys_at = compacted  # the reference itself: the others have nothing to compare with
    consistent, _revision, facts = check_once(found, 3, 0)
    assert not consistent and "nothing to compare with, etcd-0 could not be read" in facts[1]["problem"]
