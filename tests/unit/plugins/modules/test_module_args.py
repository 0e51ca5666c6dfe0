# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each module through its own main(): the arguments go through AnsibleModule's argument spec
(ansible-core's patch_module_args, the set_module_args of older collections), the result comes out of
its one exit_json. Only the pod API and the exec stream are fakes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools
import json

import pytest

from ansible.module_utils.testing import patch_module_args
from ansible_collections.hcp.etcd.plugins.module_utils import etcd_module
from ansible_collections.hcp.etcd.plugins.module_utils.pod_transport import PodTransport
from ansible_collections.hcp.etcd.plugins.modules import (
    etcd_member_cleanup,
    etcd_restore_member,
    etcd_snapshot,
    etcd_verify,
)

from conftest import FakeCore, FakePod, snapshot_bytes

NS = "clusters-demo"
IC = ",".join("etcd-%d=https://etcd-%d.etcd-discovery.%s.svc:2380" % (i, i, NS) for i in range(3))


@pytest.fixture
def cluster(monkeypatch):
    """A fake pod API and exec stream under the real EtcdModule (argument spec, auth options, errors)."""
    pod = FakePod()
    pod.put("/var/lib/data/member/snap/db", b"old-db")
    pod.put("/var/lib/data/member/wal/0.wal", b"old-wal")
    core = FakeCore({name: ("Running", True, ["etcd", "restore"]) for name in ("etcd-0", "etcd-1", "etcd-2", "helper-etcd-1")})
    monkeypatch.setattr(etcd_module.EtcdModule, "pods", property(lambda self: core))
    monkeypatch.setattr(etcd_module, "PodTransport", functools.partial(PodTransport, stream_fn=pod.stream, retry_delay=0))
    return pod


def main_of(module, args, capsys):
    """Run ``module.main()`` with ``args``; (failed, result) from the JSON it printed."""
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    result = json.loads(capsys.readouterr().out)
    return bool(result.get("failed")), result


@pytest.mark.parametrize("module, args, complaint", [
    (etcd_snapshot, {"dest": "/tmp/x.db"}, "missing required arguments: namespace"),
    (etcd_snapshot, {"namespace": NS, "dest": "/tmp/x.db", "method": "tar"}, "value of method must be one of"),
    (etcd_restore_member, {"namespace": NS, "pod": "p", "initial_cluster": IC, "src": "/x"}, "missing required arguments: member"),
    (etcd_restore_member, {"namespace": NS, "pod": "p", "member": "etcd-1", "initial_cluster": IC},
     "state is restored but all of the following are missing: src"),
    (etcd_restore_member, {"namespace": NS, "pod": "p", "member": "etcd-1", "initial_cluster": IC, "state": "rolled_back",
                           "snapshot_sha256": "0" * 64}, "state is rolled_back but all of the following are missing: run_id"),
    (etcd_verify, {"members": ["etcd-0"]}, "missing required arguments: namespace"),
    (etcd_member_cleanup, {"namespace": NS, "state": "gone"}, "value of state must be one of"),
])
def test_bad_arguments_are_refused_by_the_argument_spec(module, args, complaint, cluster, capsys):
    failed, result = main_of(module, args, capsys)
    assert failed and complaint in result["msg"], result
    assert cluster.calls == []  # refused before any exec


def test_restore_member_through_main(cluster, tmp_path, capsys):
    src = tmp_path / "etcd.db"
    src.write_bytes(snapshot_bytes())
    args = {"namespace": NS, "pod": "helper-etcd-1", "name": "etcd-1", "initial_cluster": IC, "snapshot": str(src),
            "run_id": "run-1", "kubeconfig": "/nonexistent/not-read-with-a-fake-api"}
    failed, result = main_of(etcd_restore_member, args, capsys)
    assert not failed and result["changed"] and result["msg"].startswith("restored etcd-1 into /var/lib/data"), result
    assert cluster.files["/var/lib/data/member/snap/db"] == snapshot_bytes()[:-32]
    failed, result = main_of(etcd_restore_member, args, capsys)  # the same again: nothing to do
    assert not failed and result["changed"] is False and "already holds this restore" in result["msg"], result


def test_member_cleanup_through_main(cluster, capsys):
    cluster.put("/var/lib/hcp-etcd-restore.snap.db.tmp", b"partial")
    failed, result = main_of(etcd_member_cleanup, {"namespace": NS, "members": ["etcd-1"], "container": "restore"}, capsys)
    assert not failed and result["changed"] is False, result
    assert "/var/lib/hcp-etcd-restore.snap.db.tmp" in " ".join(result["summary"])
    assert "/var/lib/hcp-etcd-restore.snap.db.tmp" in cluster.files  # listed only


def test_snapshot_check_mode_through_main(cluster, tmp_path, capsys):
    args = {"namespace": NS, "pod": "etcd-0", "dest": str(tmp_path / "s.db"), "_ansible_check_mode": True}
    failed, result = main_of(etcd_snapshot, args, capsys)
    assert not failed and result["changed"] and result["msg"].startswith("would etcdctl snapshot save"), result
    assert not (tmp_path / "s.db").exists()
