# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Handing etcd's leadership to member 0 before the members stop leader last: who is asked to move it,
what is left alone, and that a member that does not answer never gets the leadership."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.hcp.etcd.plugins.module_utils.etcd_module import EtcdModuleError
from ansible_collections.hcp.etcd.plugins.modules.etcd_move_leader import move_leadership

IDS = {"etcd-0": 0x8e9e05c52164694d, "etcd-1": 0x91bc3c398fb3c146, "etcd-2": 0xfd422379fda50e48}


class Cluster(object):
    """Three members sharing one leader; move-leader works only on the leader, as etcdctl's does."""

    def __init__(self, leader, down=(), follows_move=True):
        self.leader = IDS[leader]
        self.down = set(down)
        self.follows_move = follows_move
        self.moves = []
        self.members = [FakeMember(self, name) for name in sorted(IDS)]


class FakeMember(object):
    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name

    def status(self):
        if self.name in self.cluster.down:
            raise RuntimeError("context deadline exceeded")
        return {"name": self.name, "member_id": IDS[self.name], "leader": self.cluster.leader}

    def move_leader(self, member_id):
        assert IDS[self.name] == self.cluster.leader, "move-leader sent to %s, which does not lead" % self.name
        self.cluster.moves.append((self.name, "%x" % member_id))
        if self.cluster.follows_move:
            self.cluster.leader = member_id


def test_the_leader_hands_over_to_member_0():
    cluster = Cluster("etcd-2")
    result = move_leadership(cluster.members, "etcd-0", sleep=lambda s: None)
    assert cluster.moves == [("etcd-2", "8e9e05c52164694d")]
    assert result["moved"] and result["changed"] and result["leader_before"] == "etcd-2" and result["leader"] == "etcd-0"
    assert cluster.leader == IDS["etcd-0"]


def test_nothing_moves_when_member_0_leads_already():
    cluster = Cluster("etcd-0")
    result = move_leadership(cluster.members, "etcd-0")
    assert cluster.moves == [] and not result["changed"] and not result["moved"] and result["leader"] == "etcd-0"


def test_check_mode_only_reports():
    cluster = Cluster("etcd-1")
    result = move_leadership(cluster.members, "etcd-0", check_mode=True)
    assert cluster.moves == [] and result["changed"] and not result["moved"] and result["leader_before"] == "etcd-1"


def test_a_silent_follower_does_not_stop_the_move():
    cluster = Cluster("etcd-1", down=["etcd-2"])
    result = move_leadership(cluster.members, "etcd-0", sleep=lambda s: None)
    assert result["moved"] and cluster.moves == [("etcd-1", "8e9e05c52164694d")]


def test_a_target_that_does_not_answer_is_refused_before_any_move():
    cluster = Cluster("etcd-1", down=["etcd-0"])
    with pytest.raises(EtcdModuleError, match="etcd-0 does not answer"):
        move_leadership(cluster.members, "etcd-0")
    assert cluster.moves == []


def test_a_leader_that_does_not_answer_is_reported():
    cluster = Cluster("etcd-2", down=["etcd-2"])
    with pytest.raises(EtcdModuleError, match="not one of the members that answered"):
        move_leadership(cluster.members, "etcd-0")
    assert cluster.moves == []


def test_a_move_that_does_not_take_effect_times_out():
    cluster = Cluster("etcd-2", follows_move=False)
    with pytest.raises(EtcdModuleError, match="did not report itself as the leader within 0 s"):
        move_leadership(cluster.members, "etcd-0", timeout=0, sleep=lambda s: None)
