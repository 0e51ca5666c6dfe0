# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""etcd_member_cleanup over a fake member volume: what it lists, what it removes and keeps, the
refusal while a journal is pending, and a removal killed at each of its execs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.hcp.etcd.plugins.module_utils import etcd_cli, member_volume, pod_transport
from ansible_collections.hcp.etcd.plugins.modules import etcd_member_cleanup

from conftest import Crash, FakeCore, FakePod, make_module, run_module

NS = "clusters-demo"
ROOT = "/var/lib"
DATA = ROOT + "/data"
PREVIOUS = ROOT + "/data.pre-restore-20261129T100000Z"
OLDER = ROOT + "/data.pre-restore-20261128T100000Z"
FAILED = ROOT + "/data.failed-restore-20261129T110000Z"
STAGING = ROOT + "/data.hcp-restore-staging"
COPY = ROOT + "/hcp-etcd-restore.snap.db"
BACKUP_TMP = ROOT + "/hcp-etcd-snapshot-0123456789ab.db"
PARTIAL = ROOT + "/hcp-etcd-restore.snap.db.tmp"
# what restore runs leave with their run id in the name (etcd_restore_member given run_id)
RUN_STAGING = ROOT + "/data.hcp-restore-staging.20261129T100000Z"
RUN_COPY = ROOT + "/hcp-etcd-restore.20261129T100000Z.snap.db"
LEFT = [PREVIOUS, OLDER, FAILED, STAGING, COPY, BACKUP_TMP, PARTIAL, RUN_STAGING, RUN_COPY]


pytestmark = pytest.mark.usefixtures("crash_instead_of_kill")


def volume():
    pod = FakePod()
    pod.put(DATA + "/member/snap/db", b"live-db")
    pod.put(DATA + "/" + etcd_cli.MARKER_NAME, json.dumps({"previous_data_dir": PREVIOUS}).encode())
    for path in (PREVIOUS, OLDER, FAILED, STAGING, RUN_STAGING):
        pod.put(path + "/member/snap/db", b"x" * 4096)
    for path in (COPY, BACKUP_TMP, PARTIAL, RUN_COPY):
        pod.put(path, b"y" * 2048)
    pod.put(ROOT + "/unrelated/file", b"not ours")
    return pod


def run(pod, monkeypatch, fault=None, check_mode=False, **params):
    params.setdefault("namespace", NS)
    params.setdefault("members", ["etcd-0"])
    if fault:
        monkeypatch.setenv(pod_transport.FAULT_ENV, fault)
    mod = make_module(etcd_member_cleanup.ARGUMENT_SPEC, params, pod, core=FakeCore(), check_mode=check_mode)
    try:
        return run_module(etcd_member_cleanup.work, mod)
    except Crash:
        return "crashed", None
    finally:
        monkeypatch.delenv(pod_transport.FAULT_ENV, raising=False)


def top(pod):
    return sorted(set(p[len(ROOT) + 1:].split("/")[0] for p in pod.files if p.startswith(ROOT + "/")))


def entries(result):
    return dict((e["path"], e) for e in result["members"][0]["entries"])


def test_listed_reports_every_leftover_with_its_kind_and_removes_nothing(monkeypatch):
    pod = volume()
    before = dict(pod.files)
    failed, result = run(pod, monkeypatch)
    assert not failed and not result["changed"], result
    found = entries(result)
    assert sorted(found) == sorted(LEFT)
    assert found[PREVIOUS]["kind"] == "previous" and found[PREVIOUS]["action"] == "keep"
    assert found[OLDER]["action"] == "remove" and found[FAILED]["kind"] == "failed_restore"
    assert found[BACKUP_TMP]["kind"] == "backup_snapshot" and found[PARTIAL]["kind"] == "partial"
    assert found[RUN_STAGING]["kind"] == found[STAGING]["kind"] == "staging"
    assert found[RUN_COPY]["kind"] == found[COPY]["kind"] == "snapshot_copy"
    assert result["removable_bytes"] > 0 and pod.files == before


def test_absent_removes_the_leftovers_and_keeps_the_live_data_and_the_previous_data_its_marker_names(monkeypatch):
    pod = volume()
    failed, result = run(pod, monkeypatch, state="absent")
    assert not failed and result["changed"], result
    assert top(pod) == ["data", "data.pre-restore-20261129T100000Z", "unrelated"]
    assert pod.files[DATA + "/member/snap/db"] == b"live-db"
    assert pod.files[PREVIOUS + "/member/snap/db"] == b"x" * 4096
    assert all(e["removed"] == (e["action"] == "remove") for e in entries(result).values())


def test_keep_previous_false_removes_the_previous_data_too(monkeypatch):
    pod = volume()
    failed, result = run(pod, monkeypatch, state="absent", keep_previous=False)
    assert not failed, result
    assert top(pod) == ["data", "unrelated"]


def test_check_mode_removes_nothing(monkeypatch):
    pod = volume()
    before = dict(pod.files)
    failed, result = run(pod, monkeypatch, state="absent", check_mode=True)
    assert not failed and result["changed"] and pod.files == before


def test_a_pending_journal_refuses_before_anything_is_removed(monkeypatch):
    pod = volume()
    pod.put(ROOT + "/" + member_volume.JOURNAL_NAME, json.dumps(
        {"format_version": member_volume.JOURNAL_VERSION, "op": "swap", "run_id": "r1", "moves": []}).encode())
    before = dict(pod.files)
    failed, result = run(pod, monkeypatch, state="absent", keep_previous=False)
    assert failed and "journal is pending" in result["msg"] and "rerun that restore" in result["msg"], result
    assert pod.files == before


def test_the_data_directory_is_never_a_leftover(monkeypatch):
    pod = volume()
    vol = member_volume.MemberVolume(
        pod_transport.PodTransport(FakeCore(), NS, "etcd-0", "etcd", stream_fn=pod.stream, retry_delay=0),
        "etcd-0", DATA, STAGING, COPY)
    for path in (DATA, ROOT + "/unrelated"):
        with pytest.raises(etcd_member_cleanup.EtcdModuleError):
            vol.remove_leftover(path)
    assert pod.files[DATA + "/member/snap/db"] == b"live-db"


@pytest.mark.parametrize("action", pod_transport.FAULT_ACTIONS)
@pytest.mark.parametrize("command", ["mv -T", "rm -rf"])
def test_a_removal_killed_at_any_exec_leaves_no_half_removed_directory_under_its_name_and_a_rerun_finishes(
        monkeypatch, command, action):
    pod = volume()
    outcome = run(pod, monkeypatch, fault="%s -- %s:1:%s" % (command, OLDER, action), state="absent")
    # whatever happened, the older previous directory is whole under its name, or gone from it
    older = [p for p in pod.files if p.startswith(OLDER + "/")]
    assert older in ([], [OLDER + "/member/snap/db"]), (outcome, older)
    assert pod.files[DATA + "/member/snap/db"] == b"live-db" and pod.files[PREVIOUS + "/member/snap/db"] == b"x" * 4096
    failed, result = run(pod, monkeypatch, state="absent")
    assert not failed, result
    assert top(pod) == ["data", "data.pre-restore-20261129T100000Z", "unrelated"], (outcome, result)


def test_room_for_snapshot_passes_a_volume_with_room_and_changes_nothing(monkeypatch):
    pod = volume()
    pod.free_kib = 400 * 1024
    before = dict(pod.files)
    failed, result = run(pod, monkeypatch, room_for_snapshot=100 * 1048576)
    assert not failed and not result["changed"], result
    member = result["members"][0]
    assert member["measured"] and member["needed_bytes"] == etcd_cli.restore_space_needed(100 * 1048576)
    assert member["free_bytes"] >= 400 * 1048576 and pod.files == before


def test_room_for_snapshot_refuses_a_full_volume_naming_the_member_the_bytes_and_the_fix_and_removes_nothing(monkeypatch):
    pod = volume()
    pod.free_kib = 100 * 1024
    before = dict(pod.files)
    failed, result = run(pod, monkeypatch, room_for_snapshot=100 * 1048576)
    assert failed and result["no_space"], result
    assert "not enough space on the volume of etcd-0" in result["msg"]
    assert "Nothing was changed; live data is never removed to make room. Fix: grow the PVC data-etcd-0" in result["msg"]
    assert OLDER in result["msg"]  # the leftovers the cleanup playbook would remove are named
    assert result["members"][0]["free_bytes"] < result["members"][0]["needed_bytes"]
    assert pod.files == before


def test_room_for_snapshot_only_checks(monkeypatch):
    failed, result = run(volume(), monkeypatch, room_for_snapshot=1, state="absent")
    assert failed and "room_for_snapshot only checks; it needs state=listed" in result["msg"]
