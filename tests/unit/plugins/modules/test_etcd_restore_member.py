# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os

import pytest

from ansible_collections.hcp.etcd.plugins.module_utils import etcd_cli
from ansible_collections.hcp.etcd.plugins.modules import etcd_restore_member

from conftest import FakeCore, FakePod, make_module, run_module, snapshot_bytes

NS = "clusters-demo"
IC = ",".join("etcd-%d=https://etcd-%d.etcd-discovery.%s.svc:2380" % (i, i, NS) for i in range(3))
DATA = "/var/lib/data"


@pytest.fixture
def helper():
    pod = FakePod()
    pod.put(DATA + "/member/snap/db", b"old-db")
    pod.put(DATA + "/member/wal/0.wal", b"old-wal")
    return pod


def src_file(tmp_path, data=None, sidecar=None):
    path = tmp_path / "etcd.db"
    path.write_bytes(snapshot_bytes() if data is None else data)
    if sidecar is not None:
        (tmp_path / "etcd.db.json").write_text(json.dumps(sidecar))
    return str(path)


def restore(pod, src, check_mode=False, **params):
    params.setdefault("namespace", NS)
    params.setdefault("pod", "helper-etcd-1")
    params.setdefault("member", "etcd-1")
    params.setdefault("initial_cluster", IC)
    params["src"] = src
    core = FakeCore({"helper-etcd-1": ("Running", True, ["restore"])})
    mod = make_module(etcd_restore_member.ARGUMENT_SPEC, params, pod, core=core, check_mode=check_mode)
    failed, result = run_module(etcd_restore_member.work, mod)
    return failed, result, mod._module.warnings


def test_restore_swaps_staging_in_and_keeps_previous(helper, tmp_path):
    failed, result, _w = restore(helper, src_file(tmp_path))
    assert not failed, result
    assert result["changed"] is True and result["tool"] == "etcdutl"
    assert result["skip_hash_check"] is False and result["bump_revision_applied"] == 1000000000
    assert result["revision"] == 4321 and result["total_keys"] == 77
    prev = result["previous_data_dir"]
    assert prev.startswith(DATA + ".pre-restore-") and helper.files[prev + "/member/snap/db"] == b"old-db"
    assert helper.files[DATA + "/member/snap/db"] == snapshot_bytes()[:-32]
    argv = helper.restore_argv
    assert "--name=etcd-1" in argv and "--data-dir=/var/lib/data.hcp-restore-staging" in argv
    assert "--initial-advertise-peer-urls=https://etcd-1.etcd-discovery.%s.svc:2380" % NS in argv
    assert "--mark-compacted" in argv and "--skip-hash-check" not in argv
    # staging and the copied snapshot are gone, the marker is there
    assert not helper.under("/var/lib/data.hcp-restore-staging")
    assert "/var/lib/hcp-etcd-restore.snap.db" not in helper.files
    marker = json.loads(helper.files[DATA + "/.hcp-etcd-restore.json"])
    assert marker["member"] == "etcd-1" and marker["snapshot_sha256"] == result["snapshot_sha256"]


def test_rerun_is_unchanged_then_changed_after_etcd_ran(helper, tmp_path):
    src = src_file(tmp_path)
    restore(helper, src)
    restores = len([c for c in helper.calls if "restore" in c and "--help" not in c])
    failed, again, _w = restore(helper, src)
    assert not failed and again["changed"] is False
    assert len([c for c in helper.calls if "restore" in c and "--help" not in c]) == restores
    helper.put(DATA + "/member/wal/0000000000000000-0000000000000000.wal", b"w" * 300)  # etcd wrote
    failed, third, _w = restore(helper, src)
    assert not failed and third["changed"] is True


def test_other_member_or_snapshot_is_not_idempotent(helper, tmp_path):
    src = src_file(tmp_path)
    restore(helper, src)
    _f, other, _w = restore(helper, src, initial_cluster_token="other-token")
    assert other["changed"] is True


def test_raw_db_copy_restores_with_skip_hash_check(helper, tmp_path):
    src = src_file(tmp_path, data=helper.db)
    failed, result, _w = restore(helper, src)  # auto: no trailer -> skip
    assert not failed, result
    assert result["skip_hash_check"] is True and "--skip-hash-check" in helper.restore_argv


def test_copy_db_sidecar_forces_skip(helper, tmp_path):
    data = snapshot_bytes()
    sidecar = dict(method="copy_db", sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                   needs_skip_hash_check=True)
    failed, result, _w = restore(helper, src_file(tmp_path, data, sidecar))
    assert not failed and result["skip_hash_check"] is True
    assert "raw member/snap/db" in result["skip_hash_check_reason"]


def test_sidecar_sha_mismatch_fails_before_touching_pod(helper, tmp_path):
    sidecar = dict(method="save", sha256="b" * 64, size=1, needs_skip_hash_check=False)
    failed, result, _w = restore(helper, src_file(tmp_path, sidecar=sidecar))
    assert failed and "copy it again from the backup" in result["msg"]
    assert helper.calls == []


def test_snapshot_sha256_option_checked(helper, tmp_path):
    failed, result, _w = restore(helper, src_file(tmp_path), snapshot_sha256="c" * 64)
    assert failed and "wrong or damaged" in result["msg"]


def test_a_failed_help_probe_stops_before_the_member_changes_not_a_restore_without_the_bump(
        helper, tmp_path, monkeypatch):
    # The e2e walk (fail on the swap's `snapshot restore --help`) restored etcd-1 without the bump the
    # others had: the verification failed on compacted revisions and the run rolled back.
    src = src_file(tmp_path)
    failed, result, _w = restore(helper, src, state="staged")
    assert not failed and result["bump_revision_applied"] == 1000000000
    before = dict(helper.files)
    monkeypatch.setenv("HCP_ETCD_FAULT", "snapshot restore --help:1:fail")
    failed, result, warnings = restore(helper, src)
    assert failed and "cannot tell whether etcdutl" in result["msg"] and "rerun the restore" in result["msg"]
    assert not any("no --bump-revision" in w for w in warnings)
    assert helper.files == before  # the live data and the stage as they were
    monkeypatch.delenv("HCP_ETCD_FAULT")
    failed, result, _w = restore(helper, src)
    assert not failed and result["from_stage"] is True and result["bump_revision_applied"] == 1000000000


def test_etcd34_uses_etcdctl_and_no_bump(tmp_path):
    pod = FakePod(etcdutl=None, etcdctl="3.4.23", bump_help=False)
    failed, result, warnings = restore(pod, src_file(tmp_path))
    assert not failed, result
    assert result["tool"] == "etcdctl" and result["bump_revision_applied"] == 0
    assert pod.restore_argv[0] == "etcdctl" and "--mark-compacted" not in pod.restore_argv
    assert any("no --bump-revision" in w for w in warnings)
    assert result["previous_data_dir"] is None  # the PVC had no data dir


def test_etcd36_without_etcdutl_fails_clearly(tmp_path):
    pod = FakePod(etcdutl=None, etcdctl="3.6.1")
    failed, result, _w = restore(pod, src_file(tmp_path))
    assert failed and "etcdutl not found in container" in result["msg"]


def test_low_space_refuses_before_any_change_and_never_removes_the_live_data(helper, tmp_path):
    # finding 1: this used to rm -rf the live data dir before the upload, the check and the restore
    helper.put(DATA + "/member/snap/db", b"o" * (200 * 1024 * 1024))  # 200 MiB old data
    helper.put(DATA + ".pre-restore-20260101T000000Z/member/snap/db", b"kept")  # a leftover to name
    helper.free_kib = 70 * 1024  # 70 MiB free: not enough for upload + restore + wal
    before = dict(helper.files)
    failed, result, _w = restore(helper, src_file(tmp_path))
    assert failed and result["no_space"] is True, result
    assert result["free_bytes"] == 70 * 1024 * 1024 and result["needed_bytes"] > result["free_bytes"]
    assert "Nothing was changed" in result["msg"] and "grow the PVC data-etcd-1" in result["msg"]
    assert DATA + ".pre-restore-20260101T000000Z" in result["msg"]
    assert helper.files == before
    assert not [c for c in helper.calls if c[0] == "mv" or "tee" in " ".join(c)]  # no upload, nothing moved
    assert not [c for c in helper.calls if c[0] == "rm" and any(a.startswith(DATA) for a in c)]


def test_no_space_at_all_fails(tmp_path):
    pod = FakePod(free_kib=1024)
    failed, result, _w = restore(pod, src_file(tmp_path))
    assert failed and "not enough space" in result["msg"]


@pytest.mark.parametrize("option, value, why", [
    ("data_dir", "var/lib/data", "not an absolute path"),
    ("data_dir", "/data", "top-level"),
    ("data_dir", "/var/lib/-rf", "starts with '-'"),
    ("data_dir", "/var/lib/../etc", "'..'"),
    ("staging_dir", "/var/lib/data/staging", "must be beside data_dir"),
    ("staging_dir", "/var/lib/data", "three different paths"),
    ("remote_snapshot_path", "/tmp/x.db", "must be beside data_dir"),
    ("staging_dir", "/var/lib/st aging", "character outside"),
])
def test_bad_paths_are_refused_before_the_pod_is_touched(helper, tmp_path, option, value, why):
    # finding 13: nested, relative and option-like paths used to reach rm -rf and mv
    failed, result, _w = restore(helper, src_file(tmp_path), **{option: value})
    assert failed and why in result["msg"] and option in result["msg"], result
    assert helper.calls == []


def test_every_rm_and_mv_ends_its_options(helper, tmp_path):
    helper.put(STAGING + "/member/snap/db", b"half")
    src = src_file(tmp_path)
    restore(helper, src, run_id="run-1")
    restore(helper, src, state="rolled_back", run_id="run-1")
    removes = [c for c in helper.calls if c[0] in ("rm", "mv")]
    assert len(removes) >= 6
    for argv in removes:  # options, then "--", then only paths
        cut = argv.index("--")
        assert all(a.startswith("-") for a in argv[1:cut]) and all(a.startswith("/") for a in argv[cut + 1:]), argv


def test_keep_previous_false_removes_old_dir(helper, tmp_path):
    failed, result, _w = restore(helper, src_file(tmp_path), keep_previous=False)
    assert not failed and result["previous_data_dir"] is None
    assert not [p for p in helper.files if ".pre-restore-" in p]


def test_leftover_staging_is_removed_first(helper, tmp_path):
    helper.put("/var/lib/data.hcp-restore-staging/member/snap/db", b"half")
    failed, result, _w = restore(helper, src_file(tmp_path))
    assert not failed, result


STAGING = "/var/lib/data.hcp-restore-staging"


def _restores(pod):
    return len([c for c in pod.calls if "restore" in c and "--help" not in c])


def test_stage_only_restores_into_staging_and_leaves_the_live_data_alone(helper, tmp_path):
    live = dict((p, d) for p, d in helper.files.items() if p.startswith(DATA + "/"))
    failed, result, _w = restore(helper, src_file(tmp_path), state="staged")
    assert not failed, result
    assert result["changed"] is True and result["staged"] is True and result["previous_data_dir"] is None
    assert dict((p, d) for p, d in helper.files.items() if p.startswith(DATA + "/")) == live
    assert helper.files[STAGING + "/member/snap/db"] == snapshot_bytes()[:-32]
    assert json.loads(helper.files[STAGING + "/.hcp-etcd-restore.json"])["member"] == "etcd-1"
    assert "/var/lib/hcp-etcd-restore.snap.db" not in helper.files
    # staging again is a no-op
    failed, again, _w = restore(helper, src_file(tmp_path), state="staged")
    assert not failed and again["changed"] is False and again["staged"] is True and _restores(helper) == 1


def test_swap_after_stage_does_not_copy_or_restore_again(helper, tmp_path):
    src = src_file(tmp_path)
    restore(helper, src, state="staged")
    calls = len(helper.calls)
    failed, result, _w = restore(helper, src)
    assert not failed, result
    assert result["changed"] is True and result["from_stage"] is True and result["staged"] is False
    assert _restores(helper) == 1
    assert not [c for c in helper.calls[calls:] if "snap.db" in " ".join(c) and c[0] != "rm"]  # no upload, no snapshot status
    assert helper.files[DATA + "/member/snap/db"] == snapshot_bytes()[:-32]
    assert helper.files[result["previous_data_dir"] + "/member/snap/db"] == b"old-db"
    assert result["revision"] == 4321 and not helper.under(STAGING)
    marker = json.loads(helper.files[DATA + "/.hcp-etcd-restore.json"])
    assert marker["staged_at"] <= marker["restored_at"]
    failed, again, _w = restore(helper, src)
    assert not failed and again["changed"] is False


def test_swap_by_the_recorded_sha256_does_not_read_the_file_again(helper, tmp_path, monkeypatch):
    # Inside the outage the swap of a staged member needs only the run record's sha256: the file on the
    # controller is not hashed again (it was, twice per member, before this). Proven by removing it.
    src = src_file(tmp_path, sidecar=None)
    sha = hashlib.sha256(snapshot_bytes()).hexdigest()
    failed, staged, _w = restore(helper, src, state="staged", snapshot_sha256=sha)
    assert not failed and staged["staged"] is True and staged["skip_hash_check"] is False, staged
    reads = []
    monkeypatch.setattr(etcd_cli, "snapshot_digest", lambda *a, **k: reads.append(a))
    os.unlink(src)
    failed, result, _w = restore(helper, src, snapshot_sha256=sha.upper())
    assert not failed, result
    assert reads == [] and result["from_stage"] is True and result["changed"] is True
    assert result["snapshot_sha256"] == sha and result["revision"] == 4321 and result["total_keys"] == 77
    assert result["skip_hash_check"] is False and _restores(helper) == 1
    assert helper.files[DATA + "/member/snap/db"] == snapshot_bytes()[:-32]
    marker = json.loads(helper.files[DATA + "/.hcp-etcd-restore.json"])
    assert marker["snapshot_sha256"] == sha and marker["skip_hash_check"] is False


def test_swap_by_the_recorded_sha256_without_a_stage_checks_the_file_before_any_change(helper, tmp_path):
    src = src_file(tmp_path)
    live = dict(helper.files)
    failed, result, _w = restore(helper, src, snapshot_sha256="ab" * 32)
    assert failed and "snapshot_sha256 is " + "ab" * 32 in result["msg"] and "wrong or damaged file" in result["msg"]
    assert helper.files == live and _restores(helper) == 0
    failed, result, _w = restore(helper, src, snapshot_sha256=hashlib.sha256(snapshot_bytes()).hexdigest())
    assert not failed and result["from_stage"] is False and _restores(helper) == 1  # staged and swapped now
    assert result["revision"] == 4321 and result["skip_hash_check"] is False


def test_a_stage_made_without_the_hash_check_is_not_swapped_in_when_the_check_is_asked_for(helper, tmp_path):
    src = src_file(tmp_path)
    sha = hashlib.sha256(snapshot_bytes()).hexdigest()
    restore(helper, src, state="staged", skip_hash_check="yes", snapshot_sha256=sha)
    failed, result, _w = restore(helper, src, skip_hash_check="no", snapshot_sha256=sha)
    assert not failed and result["from_stage"] is False and result["skip_hash_check"] is False and _restores(helper) == 2


def test_a_stage_of_another_restore_or_touched_since_is_redone(helper, tmp_path):
    src = src_file(tmp_path)
    restore(helper, src, state="staged", initial_cluster_token="other-token")
    failed, result, _w = restore(helper, src)
    assert not failed and result["from_stage"] is False and _restores(helper) == 2
    restore(helper, src, force=True, state="staged", member="etcd-1", bump_revision=5)
    helper.put(STAGING + "/member/wal/0.wal", b"x" * 10)  # the staged copy changed after staging
    failed, result, _w = restore(helper, src, force=True, bump_revision=5)
    assert not failed and result["from_stage"] is False


def test_stage_only_without_space_beside_live_data_refuses_and_changes_nothing(helper, tmp_path):
    helper.put(DATA + "/member/snap/db", b"o" * (200 * 1024 * 1024))
    helper.free_kib = 70 * 1024
    before = dict(helper.files)
    failed, result, _w = restore(helper, src_file(tmp_path), state="staged")
    assert failed and result["no_space"] is True and "Nothing was changed" in result["msg"]
    assert helper.files == before


def test_check_mode_touches_nothing(helper, tmp_path):
    before = dict(helper.files)
    failed, result, _w = restore(helper, src_file(tmp_path), check_mode=True)
    assert not failed and result["changed"] is True and result["msg"].startswith("would")
    assert helper.files == before


def test_member_not_in_initial_cluster(helper, tmp_path):
    failed, result, _w = restore(helper, src_file(tmp_path), member="etcd-5")
    assert failed and "not in initial_cluster" in result["msg"]


def test_folded_initial_cluster_is_normalised():
    folded = IC.replace(",", ",\n ") + "\n"
    assert etcd_restore_member.normalise_initial_cluster(folded) == IC
    assert etcd_cli.peer_urls_for(IC, "etcd-2").endswith("etcd-2.etcd-discovery.%s.svc:2380" % NS)


def test_roll_back_puts_the_previous_data_back_and_keeps_the_restored_aside(helper, tmp_path):
    src = src_file(tmp_path)
    _f, restored, _w = restore(helper, src, run_id="run-1")
    failed, result, _w = restore(helper, src, state="rolled_back", run_id="run-1")
    assert not failed and result["changed"] is True, result
    aside = result["previous_data_dir"]
    assert aside.startswith(DATA + ".failed-restore-") and helper.files[aside + "/member/snap/db"] == snapshot_bytes()[:-32]
    assert helper.files[DATA + "/member/snap/db"] == b"old-db" and not helper.under(restored["previous_data_dir"])
    failed, again, _w = restore(helper, src, state="rolled_back", run_id="run-1")  # nothing of this run is left in place
    assert not failed and again["changed"] is False and "nothing to roll back" in again["msg"]


def test_roll_back_leaves_a_member_this_run_did_not_swap(helper, tmp_path):
    src = src_file(tmp_path)
    restore(helper, src, state="staged")
    before = dict(helper.files)
    failed, result, _w = restore(helper, src, state="rolled_back", run_id="run-2")
    assert not failed and result["changed"] is False and helper.files == before
    # the same snapshot restored by an EARLIER run is not this run's to undo
    restore(helper, src, run_id="run-1")
    before = dict(helper.files)
    failed, result, _w = restore(helper, src, state="rolled_back", run_id="run-2")
    assert not failed and result["changed"] is False and helper.files == before


def test_roll_back_without_a_kept_previous_fails_and_keeps_the_data(helper, tmp_path):
    src = src_file(tmp_path)
    restore(helper, src, keep_previous=False, run_id="run-1")
    before = dict(helper.files)
    failed, result, _w = restore(helper, src, state="rolled_back", run_id="run-1")
    assert failed and "was not kept" in result["msg"] and helper.files == before


RUN_A = "2026-11-29T10:00:00Z"
RUN_B = "2026-11-29T11:30:00Z"


def test_the_paths_of_a_run_carry_its_id_so_two_runs_never_share_one(helper, tmp_path):
    # finding 3: run A staged (its async job may still be running when run B starts with break_lock)
    src = src_file(tmp_path)
    failed, result, _w = restore(helper, src, state="staged", run_id=RUN_A)
    assert not failed and result["staged"] is True, result
    staging_a = DATA + ".hcp-restore-staging.20261129T100000Z"
    a_files = dict((p, d) for p, d in helper.files.items() if p.startswith(staging_a + "/"))
    assert a_files[staging_a + "/member/snap/db"] == snapshot_bytes()[:-32]
    failed, result, _w = restore(helper, src, state="staged", run_id=RUN_B)
    assert not failed and result["staged"] is True, result
    staging_b = DATA + ".hcp-restore-staging.20261129T113000Z"
    assert helper.files[staging_b + "/member/snap/db"] == snapshot_bytes()[:-32]
    # B wrote its own directory and removed neither A's staging nor anything of it; no copy is left
    assert dict((p, d) for p, d in helper.files.items() if p.startswith(staging_a + "/")) == a_files
    argv = [c for c in helper.calls if "restore" in c and "--help" not in c]
    assert any("--data-dir=%s" % staging_b in " ".join(c) for c in argv)
    assert not [p for p in helper.files if "/hcp-etcd-restore." in p]
    copies = [p for c in helper.calls for p in c if isinstance(p, str) and p.startswith("/var/lib/hcp-etcd-restore.")]
    expected = {"/var/lib/hcp-etcd-restore.20261129T100000Z", "/var/lib/hcp-etcd-restore.20261129T113000Z"}
    assert copies and set(p.split(".snap.db")[0] for p in copies) == expected, copies


def test_a_run_swaps_its_own_staging_in_and_leaves_another_runs_staging_listed(helper, tmp_path):
    src = src_file(tmp_path)
    restore(helper, src, state="staged", run_id=RUN_A)
    failed, result, _w = restore(helper, src, run_id=RUN_B)
    assert not failed and result["changed"] is True and result["from_stage"] is False, result
    assert helper.files[DATA + "/member/snap/db"] == snapshot_bytes()[:-32]
    assert helper.under(DATA + ".hcp-restore-staging.20261129T100000Z")  # A's, untouched: a leftover for cleanup
    assert not helper.under(DATA + ".hcp-restore-staging.20261129T113000Z")  # B's own went in


@pytest.mark.parametrize("run_id", ["", "::--"])
def test_a_run_id_without_letters_or_digits_names_no_path(run_id):
    from ansible_collections.hcp.etcd.plugins.module_utils import member_volume

    if not run_id:
        assert member_volume.run_paths("/var/lib/data", run_id) == ("/var/lib/data.hcp-restore-staging", "/var/lib/hcp-etcd-restore.snap.db")
    else:
        with pytest.raises(Exception, match="no letter or digit"):
            member_volume.run_paths("/var/lib/data", run_id)
