# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import json
import os
import stat
from types import SimpleNamespace

import conftest
from ansible_collections.hcp.etcd.plugins.modules import etcd_snapshot

from conftest import FakeCore, make_module, run_module, snapshot_bytes

HC = {"metadata": {"name": "demo", "namespace": "clusters", "uid": "uid-demo"},
      "spec": {"secretEncryption": {"aescbc": {"activeKey": {"name": "demo-etcd-key"}}}}}
KEY = b"0123456789abcdef0123456789abcdef"
SECRET = {"metadata": {"name": "demo-etcd-key"}, "data": {"key": base64.b64encode(KEY).decode()}}


def snap(fake, tmp_path, check_mode=False, core=None, **params):
    params.setdefault("namespace", "clusters-demo")
    params.setdefault("dest", str(tmp_path / "backups" / "etcd.db"))
    params.setdefault("cluster_name", "demo")
    params.setdefault("hosted_cluster_namespace", "clusters")
    fake.files.setdefault("/var/lib/data/member/snap/db", fake.db)  # the member's live database
    mod = make_module(etcd_snapshot.ARGUMENT_SPEC, params, fake, core=core, check_mode=check_mode)
    failed, result = run_module(etcd_snapshot.work, mod)
    return failed, result, mod


def test_save_writes_file_sidecar_and_cleans_up(pod, tmp_path):
    failed, result, mod = snap(pod, tmp_path)
    assert not failed, result
    assert result["changed"] is True and result["member"] == "etcd-0" and result["method"] == "save"
    data = snapshot_bytes()
    assert result["sha256"] == hashlib.sha256(data).hexdigest() and result["size"] == len(data)
    assert result["revision"] == 4321 and result["total_keys"] == 77 and result["hash"] == 1234
    # the member's key count and hashkv at the snapshot's revision, which a restore drill compares
    assert result["kv_count"] == 76 and result["kv_hash"] == 98765
    assert result["needs_skip_hash_check"] is False and result["etcd_version"] == "3.5.16"
    dest = result["dest"]
    assert open(dest, "rb").read() == data
    sidecar = json.load(open(dest + ".json"))
    assert sidecar["sha256"] == result["sha256"] and sidecar["namespace"] == "clusters-demo"
    for path in (dest, dest + ".json"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(dest)).st_mode) == 0o700
    # the temporary snapshot in the pod is gone, and save ran over TLS with the default paths
    assert not [p for p in pod.files if p.startswith("/var/lib/hcp-etcd-snapshot")]
    save = [c for c in pod.calls if "save" in c][0]
    assert "--cacert=/etc/etcd/tls/etcd-ca/ca.crt" in save and "--endpoints=https://localhost:2379" in save


def test_save_rerun_is_unchanged_unless_forced(pod, tmp_path):
    _f, first, _m = snap(pod, tmp_path)
    calls = len(pod.calls)
    failed, second, _m = snap(pod, tmp_path)
    assert not failed and second["changed"] is False and second["sha256"] == first["sha256"]
    assert len(pod.calls) == calls  # nothing touched the pod
    _f, third, _m = snap(pod, tmp_path, force=True)
    assert third["changed"] is True


def test_save_redone_when_file_no_longer_matches_sidecar(pod, tmp_path):
    _f, first, _m = snap(pod, tmp_path)
    with open(first["dest"], "ab") as handle:
        handle.write(b"tampered")
    _f, second, _m = snap(pod, tmp_path)
    assert second["changed"] is True and open(first["dest"], "rb").read() == snapshot_bytes()


def test_save_uses_legacy_ca_when_new_one_missing(pod, tmp_path):
    del pod.files["/etc/etcd/tls/etcd-ca/ca.crt"]
    pod.files["/etc/etcd/tls/client/etcd-client-ca.crt"] = b"ca"
    failed, result, _m = snap(pod, tmp_path)
    assert not failed, result
    save = [c for c in pod.calls if "save" in c][0]
    assert "--cacert=/etc/etcd/tls/client/etcd-client-ca.crt" in save


def test_save_without_tls_files_names_the_option(pod, tmp_path):
    del pod.files["/etc/etcd/tls/client/etcd-client.key"]
    failed, result, _m = snap(pod, tmp_path)
    assert failed and "set the key option" in result["msg"]


def test_check_mode_changes_nothing(pod, tmp_path):
    failed, result, _m = snap(pod, tmp_path, check_mode=True)
    assert not failed and result["changed"] is True and result["msg"].startswith("would")
    assert not os.path.exists(str(tmp_path / "backups"))
    assert [c for c in pod.calls if "save" in c] == []


def test_default_pod_is_first_ready(pod, tmp_path):
    core = FakeCore({
        "etcd-0": ("Running", False, ["etcd"]),
        "etcd-1": ("Running", True, ["etcd"]),
        "etcd-2": ("Running", True, ["etcd"]),
    })
    failed, result, _m = snap(pod, tmp_path, core=core)
    assert not failed and result["member"] == "etcd-1"


def test_no_ready_pod_suggests_copy_db(pod, tmp_path):
    core = FakeCore({"etcd-0": ("Running", False, ["etcd"])})
    failed, result, _m = snap(pod, tmp_path, core=core)
    assert failed and "no Ready pod" in result["msg"] and "copy_db" in result["msg"]


def test_copy_db_records_skip_hash_check(pod, tmp_path):
    pod.put("/var/lib/data/member/snap/db", pod.db)
    core = FakeCore({"helper": ("Running", True, ["restore"])})
    failed, result, _m = snap(pod, tmp_path, core=core, method="copy_db", pod="helper", container="restore")
    assert not failed, result
    assert result["needs_skip_hash_check"] is True and result["method"] == "copy_db"
    assert json.load(open(result["sidecar"]))["needs_skip_hash_check"] is True
    assert open(result["dest"], "rb").read() == pod.db


def test_copy_db_needs_pod(pod, tmp_path):
    failed, result, _m = snap(pod, tmp_path, method="copy_db")
    assert failed and "needs pod" in result["msg"]


# ---- finding 5: a `snapshot save` file with a bad sha256 trailer fails the backup -----------


def test_save_with_a_damaged_trailer_fails_and_leaves_no_file(pod, tmp_path, monkeypatch):
    good = snapshot_bytes()
    monkeypatch.setattr(conftest, "snapshot_bytes", lambda: good[:-1] + bytes([good[-1] ^ 0xFF]))
    failed, result, _m = snap(pod, tmp_path)
    assert failed and "sha256 trailer is missing or wrong" in result["msg"], result
    dest = str(tmp_path / "backups" / "etcd.db")
    assert not os.path.exists(dest) and not os.path.exists(dest + ".json")
    # the temporary file in the pod is removed all the same
    assert not [p for p in pod.files if p.startswith("/var/lib/hcp-etcd-snapshot")]


def test_save_records_that_it_needs_no_skip_hash_check(pod, tmp_path):
    _f, result, _m = snap(pod, tmp_path)
    assert json.load(open(result["sidecar"]))["needs_skip_hash_check"] is False


# ---- finding 9: the save's copy must fit on the member's volume --------------------------


def test_save_refused_when_the_member_volume_lacks_space(pod, tmp_path):
    pod.files["/var/lib/data/member/snap/db"] = b"d" * (100 * 1024 * 1024)
    pod.free_kib = 150 * 1024  # 150 MiB free: less than 100 MiB + 10% + 64 MiB
    failed, result, _m = snap(pod, tmp_path)
    assert failed, result
    assert "150 MiB free in /var/lib" in result["msg"] and "is 100 MiB" in result["msg"]
    assert "174 MiB needed" in result["msg"] and "Defragment the member" in result["msg"]
    assert [c for c in pod.calls if "save" in c] == []  # nothing was written in the pod
    assert not os.path.exists(str(tmp_path / "backups" / "etcd.db"))


def test_save_goes_ahead_with_enough_space_and_reports_it(pod, tmp_path):
    pod.files["/var/lib/data/member/snap/db"] = b"d" * (100 * 1024 * 1024)
    pod.free_kib = 200 * 1024
    failed, result, _m = snap(pod, tmp_path)
    assert not failed, result
    assert result["space"] == {"db_size": 100 * 2 ** 20, "free": 200 * 2 ** 20, "need": 110 * 2 ** 20 + 64 * 2 ** 20}


# ---- finding 8: the sidecar binds the snapshot to its HostedCluster ----------------------


def test_sidecar_binds_uid_namespace_name_version_and_key_fingerprint(pod, tmp_path):
    failed, result, _m = snap(pod, tmp_path, hosted_cluster=HC, encryption_key_secret=SECRET)
    assert not failed, result
    text = open(result["sidecar"]).read()
    sidecar = json.loads(text)
    assert sidecar["hosted_cluster_uid"] == "uid-demo" and sidecar["hosted_cluster_namespace"] == "clusters"
    assert sidecar["cluster_name"] == "demo" and sidecar["etcd_version"] == "3.5.16"
    assert sidecar["encryption_key_fingerprint"] == "sha256:" + hashlib.sha256(KEY).hexdigest()
    # never the key, in any encoding
    assert SECRET["data"]["key"] not in text and KEY.decode() not in text


def test_sidecar_of_a_cluster_without_encryption_key_says_none(pod, tmp_path):
    hc = {"metadata": dict(HC["metadata"]), "spec": {}}
    _f, result, _m = snap(pod, tmp_path, hosted_cluster=hc)
    assert json.load(open(result["sidecar"]))["encryption_key_fingerprint"] == "none"


def test_cluster_with_a_key_but_no_secret_is_refused_before_the_save(pod, tmp_path):
    failed, result, _m = snap(pod, tmp_path, hosted_cluster=HC)
    assert failed and "demo-etcd-key, which could not be read" in result["msg"]
    assert [c for c in pod.calls if "save" in c] == []


def test_hosted_cluster_must_be_the_one_named(pod, tmp_path):
    failed, result, _m = snap(pod, tmp_path, hosted_cluster=HC, encryption_key_secret=SECRET, cluster_name="other")
    assert failed and "cluster_name is other but the hosted_cluster given is demo" in result["msg"]


def test_the_save_of_a_large_database_gets_a_timeout_scaled_to_its_size(pod, tmp_path, monkeypatch):
    """Finding 10: a 4 GiB database is not given the fixed 600 s; the save gets 60 s + its size at 2 MiB/s."""
    from ansible_collections.hcp.etcd.plugins.module_utils.pod_transport import PodTransport

    monkeypatch.setattr(etcd_snapshot, "check_save_space", lambda *_a: dict(db_size=4 * 2 ** 30, free=8 * 2 ** 30, need=0))
    seen = []
    real_exec = PodTransport.exec

    def spy(self, argv, *args, **kwargs):
        seen.append((list(argv), kwargs.get("timeout")))
        return real_exec(self, argv, *args, **kwargs)

    monkeypatch.setattr(PodTransport, "exec", spy)
    failed, result, _m = snap(pod, tmp_path, timeout=600)
    assert not failed, result
    saves = [timeout for argv, timeout in seen if "snapshot" in argv and "save" in argv]
    assert saves == [60 + 4 * 2 ** 30 // (2 * 2 ** 20)], seen


def test_the_member_counts_and_hashes_its_keys_while_the_snapshot_comes_down(pod, tmp_path, monkeypatch):
    """Both read a whole 2 GiB store or file (about 15 and 25 s): the key count and hashkv at the snapshot's revision
    run beside the download, and their result still reaches the sidecar."""
    import threading

    from ansible_collections.hcp.etcd.plugins.module_utils.pod_transport import PodTransport

    both = threading.Barrier(2)
    real_kv_at, real_download = etcd_snapshot.kv_at, PodTransport.download

    def kv_at(*args):
        both.wait(timeout=5)  # broken when the download waits for the count first, or the count for the download
        return real_kv_at(*args)

    def download(self, *args, **kwargs):
        both.wait(timeout=5)
        return real_download(self, *args, **kwargs)

    monkeypatch.setattr(etcd_snapshot, "kv_at", kv_at)
    monkeypatch.setattr(PodTransport, "download", download)
    failed, result, _m = snap(pod, tmp_path)
    assert not failed, result
    assert not both.broken
    assert result["kv_count"] == 76 and result["kv_hash"] == 98765
    assert json.load(open(result["dest"] + ".json"))["kv_hash"] == 98765


def test_every_member_is_compared_with_the_snapshot_at_its_revision_at_once_while_it_comes_down(pod, tmp_path, monkeypatch):
    """compare_members: the three members' reads meet (they run at the same time) and meet the download; the result
    names each member's keys and hash, and the sidecar keeps the saving member's."""
    import threading

    from ansible_collections.hcp.etcd.plugins.module_utils.pod_transport import PodTransport

    members = threading.Barrier(3)
    pod.kv_barriers = {"etcd-0": members, "etcd-1": members, "etcd-2": members}
    with_download = threading.Barrier(2)
    real_download = PodTransport.download

    def download(self, *args, **kwargs):
        with_download.wait(timeout=5)
        return real_download(self, *args, **kwargs)

    real_scan_at = etcd_snapshot.scan_at

    def scan_at(*args, **kwargs):
        with_download.wait(timeout=5)  # broken when the download waits for the members, or they for it
        return real_scan_at(*args, **kwargs)

    monkeypatch.setattr(PodTransport, "download", download)
    monkeypatch.setattr(etcd_snapshot, "scan_at", scan_at)
    failed, result, _m = snap(pod, tmp_path, compare_members=["etcd-0", "etcd-1", "etcd-2"])
    assert not failed, result
    assert not members.broken and not with_download.broken
    assert result["members_compared"] == [{"name": "etcd-%d" % i, "keys": 76, "hash": 98765} for i in range(3)]
    assert result["kv_count"] == 76 and result["kv_hash"] == 98765
    assert json.load(open(result["dest"] + ".json"))["kv_hash"] == 98765
    assert {"etcd-1", "etcd-2"} <= set(pod.pods_asked)


def test_a_member_serving_other_data_fails_the_backup_by_name_and_no_snapshot_is_kept(pod, tmp_path):
    """etcd-2 serves an empty store (what restoring etcd-0 alone leaves): the file is removed, no sidecar is written,
    and the message names etcd-2 and what differs."""
    pod.kv = {"etcd-2": (0, 11)}
    failed, result, _m = snap(pod, tmp_path, compare_members=["etcd-0", "etcd-1", "etcd-2"])
    assert failed
    assert "etcd-2 (0 keys, etcd-0 has 76; hashkv 11 differs from etcd-0's 98765)" in result["msg"], result["msg"]
    assert "etcd-1" not in result["msg"].split("serves:")[0]
    assert "Nothing was kept" in result["msg"]
    backups = tmp_path / "backups"
    assert sorted(os.listdir(str(backups))) == []
    assert not [p for p in pod.files if p.startswith("/var/lib/hcp-etcd-snapshot")]


def test_a_member_that_cannot_be_compared_fails_the_backup_and_no_snapshot_is_kept(pod, tmp_path):
    pod.kv = {"etcd-1": (76, None)}  # its read times out
    failed, result, _m = snap(pod, tmp_path, compare_members=["etcd-0", "etcd-1", "etcd-2"])
    assert failed
    assert "could not be read" in result["msg"] and "back up again" in result["msg"], result["msg"]
    assert os.listdir(str(tmp_path / "backups")) == []


def test_a_member_compacted_past_the_snapshots_revision_holds_another_store_and_is_named(pod, tmp_path):
    pod.kv = {"etcd-1": (76, "compacted")}
    failed, result, _m = snap(pod, tmp_path, compare_members=["etcd-0", "etcd-1", "etcd-2"])
    assert failed
    assert "etcd-1 (its store was compacted past the revision etcd-0 was read at: another store)" in result["msg"], result["msg"]
    assert os.listdir(str(tmp_path / "backups")) == []


def test_without_compare_members_only_the_saving_member_is_read(pod, tmp_path):
    pod.kv = {"etcd-1": (0, 11)}
    failed, result, _m = snap(pod, tmp_path)
    assert not failed, result
    assert set(pod.pods_asked) == {"etcd-0"} and "members_compared" not in result


def test_a_member_whose_store_never_reaches_the_snapshots_revision_is_named_as_behind(pod, tmp_path, monkeypatch):
    """An emptied member that rejoined as new (the published procedure's etcd-1 and etcd-2) answers a read at the
    snapshot's revision with 'future revision': it is waited for, then named with its own revision."""
    from ansible_collections.hcp.etcd.plugins.module_utils import etcd_module

    real_run = pod.run

    def run(argv, stdin, pod_name=None):
        if pod_name == "etcd-2" and "--rev=4321" in argv:
            return 1, b"", b"Error: etcdserver: mvcc: required revision is a future revision\n", None
        if pod_name == "etcd-2" and "endpoint" in argv and "status" in argv:
            return 0, json.dumps([{"Status": {"header": {"revision": 67, "cluster_id": 1, "member_id": 2}, "leader": 1}}]).encode(), b"", None
        return real_run(argv, stdin, pod_name)

    monkeypatch.setattr(pod, "run", run)
    clock = [1000.0]  # a clock that the waits advance, so that the 10 s of waiting take no time
    monkeypatch.setattr(etcd_module, "time", SimpleNamespace(time=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s)))
    failed, result, _m = snap(pod, tmp_path, compare_members=["etcd-0", "etcd-1", "etcd-2"])
    assert failed
    assert "etcd-2 (at revision 67, it never reached the revision etcd-0 was read at: another store, or far behind)" in result["msg"], result["msg"]
    assert os.listdir(str(tmp_path / "backups")) == []


def test_killed_while_the_members_are_compared_it_leaves_no_sidecar_and_the_rerun_takes_a_new_snapshot(
        pod, tmp_path, monkeypatch, crash_instead_of_kill):
    """The module killed (SIGKILL: nothing after it runs) at etcd-2's hashkv, while the file comes down: whatever
    file is left has no sidecar, so nothing counts it as a backup (the role's partial directory is never renamed),
    and the same call again takes a new snapshot and writes the sidecar."""
    import pytest

    from ansible_collections.hcp.etcd.plugins.module_utils import pod_transport
    from conftest import Crash

    monkeypatch.setenv(pod_transport.FAULT_ENV, "etcd-2: .*endpoint hashkv:1:kill")
    with pytest.raises(Crash):
        snap(pod, tmp_path, compare_members=["etcd-0", "etcd-1", "etcd-2"])
    backups = tmp_path / "backups"
    assert not os.path.exists(str(backups / "etcd.db.json")), os.listdir(str(backups))
    monkeypatch.delenv(pod_transport.FAULT_ENV)
    failed, result, _m = snap(pod, tmp_path, compare_members=["etcd-0", "etcd-1", "etcd-2"])
    assert not failed, result
    assert result["changed"] is True and len(result["members_compared"]) == 3
    assert json.load(open(result["dest"] + ".json"))["sha256"] == hashlib.sha256(open(result["dest"], "rb").read()).hexdigest()


def test_without_compare_members_an_unreadable_count_is_a_warning_and_the_snapshot_is_kept(pod, tmp_path):
    for answer in ((76, None), (76, "compacted")):
        pod.kv = {"etcd-0": answer}
        failed, result, mod = snap(pod, tmp_path, force=True)
        assert not failed, result
        assert result["kv_count"] is None and result["kv_hash"] is None
        assert json.load(open(result["dest"] + ".json"))["kv_hash"] is None
        assert "a restore drill of this backup will not compare them" in mod._module.warnings[-1], mod._module.warnings
