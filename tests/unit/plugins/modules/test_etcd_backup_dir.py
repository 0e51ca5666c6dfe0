# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Putting a backup into place on the controller: files 0600, one rename, and retention that counts and
removes complete backups only (the store's rule), never the new one."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.hcp.etcd.plugins.modules import etcd_backup_dir as bd


def backup(directory, name, complete=True):
    path = directory / name
    path.mkdir()
    (path / "etcd-snapshot.db").write_bytes(b"snap")
    if complete:
        (path / "etcd-snapshot.db.json").write_text("{}")
    return path


def test_places_the_files_0600_renames_and_keeps_the_newest(tmp_path):
    for name in ("20261128T030000Z", "20261129T030000Z", "20261130T030000Z"):
        backup(tmp_path, name)
    backup(tmp_path, "20261130T040000Z", complete=False)   # a failed run: no sidecar
    (tmp_path / "20261130T050000Z").mkdir()                 # an empty directory of an older version
    partial = backup(tmp_path, ".20261201T030000Z.partial")
    result = bd.place(str(partial), str(tmp_path / "20261201T030000Z"), {"hostedcluster.yaml": "kind: HostedCluster\n"}, keep=2)
    placed = tmp_path / "20261201T030000Z"
    assert not partial.exists() and (placed / "hostedcluster.yaml").read_text() == "kind: HostedCluster\n"
    assert stat.S_IMODE(os.stat(str(placed / "hostedcluster.yaml")).st_mode) == 0o600
    assert [os.path.basename(p) for p in result["complete"]] == ["20261201T030000Z", "20261130T030000Z", "20261129T030000Z",
                                                                 "20261128T030000Z"]
    assert [os.path.basename(p) for p in result["removed"]] == ["20261129T030000Z", "20261128T030000Z"]
    assert [os.path.basename(p) for p in result["incomplete"]] == ["20261130T040000Z", "20261130T050000Z"]
    assert sorted(os.listdir(str(tmp_path))) == ["20261130T030000Z", "20261130T040000Z", "20261130T050000Z", "20261201T030000Z"]


def test_keep_0_keeps_every_backup_and_the_new_one_is_never_removed(tmp_path):
    backup(tmp_path, "20261130T030000Z")
    partial = backup(tmp_path, ".20261101T030000Z.partial")  # a clock set back: the new backup sorts oldest
    assert bd.place(str(partial), str(tmp_path / "20261101T030000Z"), {}, keep=0)["removed"] == []
    partial = backup(tmp_path, ".20261102T030000Z.partial")
    assert bd.place(str(partial), str(tmp_path / "20261102T030000Z"), {}, keep=1)["removed"] == [str(tmp_path / "20261101T030000Z")]
    assert sorted(os.listdir(str(tmp_path))) == ["20261102T030000Z", "20261130T030000Z"]


@pytest.mark.parametrize("leaves, missing", [(["etcd-snapshot.db"], "etcd-snapshot.db.json"), ([], "etcd-snapshot.db")])
def test_a_partial_backup_without_its_snapshot_or_sidecar_is_not_put_into_place(tmp_path, leaves, missing):
    backup(tmp_path, "20261130T030000Z")
    partial = tmp_path / ".20261201T030000Z.partial"
    partial.mkdir()
    for leaf in leaves:
        (partial / leaf).write_text("x")
    with pytest.raises(bd.BackupDirError, match="holds no %s" % missing):
        bd.place(str(partial), str(tmp_path / "20261201T030000Z"), {"a.yaml": "x"}, keep=1)
    assert sorted(os.listdir(str(partial))) == sorted(leaves) and (tmp_path / "20261130T030000Z").exists()


def test_an_existing_backup_of_that_time_is_never_replaced(tmp_path):
    kept = backup(tmp_path, "20261201T030000Z")
    partial = backup(tmp_path, ".20261201T030000Z.partial")
    with pytest.raises(bd.BackupDirError, match="exists already"):
        bd.place(str(partial), str(kept), {}, keep=1)
    assert partial.exists() and (kept / "etcd-snapshot.db.json").exists()


@pytest.mark.parametrize("name", ["../escape.yaml", "sub/file.yaml", ".."])
def test_a_file_name_outside_the_backup_is_refused_before_anything_is_written(tmp_path, name):
    partial = backup(tmp_path, ".20261201T030000Z.partial")
    with pytest.raises(bd.BackupDirError, match="not a plain name"):
        bd.place(str(partial), str(tmp_path / "20261201T030000Z"), {name: "x"}, keep=1)
    assert sorted(os.listdir(str(tmp_path))) == [".20261201T030000Z.partial"]


def test_check_mode_changes_nothing_and_names_what_it_would_remove(tmp_path):
    for name in ("20261129T030000Z", "20261130T030000Z"):
        backup(tmp_path, name)
    result = bd.place(str(tmp_path / ".20261201T030000Z.partial"), str(tmp_path / "20261201T030000Z"), {"a.yaml": "x"}, keep=2,
                      check_mode=True)
    assert result["removed"] == [str(tmp_path / "20261129T030000Z")]
    assert sorted(os.listdir(str(tmp_path))) == ["20261129T030000Z", "20261130T030000Z"]


def test_a_removal_cut_short_leaves_an_incomplete_backup_never_a_complete_damaged_one(tmp_path, monkeypatch):
    backup(tmp_path, "20261129T030000Z")
    partial = backup(tmp_path, ".20261201T030000Z.partial")

    def cut(path):
        raise OSError("cut")
    monkeypatch.setattr(bd.shutil, "rmtree", cut)
    with pytest.raises(OSError):
        bd.place(str(partial), str(tmp_path / "20261201T030000Z"), {}, keep=1)
    assert sorted(os.listdir(str(tmp_path / "20261129T030000Z"))) == ["etcd-snapshot.db"]  # sidecar gone first
    assert (tmp_path / "20261201T030000Z" / "etcd-snapshot.db.json").exists()


def test_the_files_are_never_logged(monkeypatch):
    """files may carry the encryption key Secret (age-encrypted): the module's argument spec keeps it out of logs."""
    seen = {}

    class Captured(Exception):
        pass

    def fake_module(argument_spec, **kwargs):
        seen.update(argument_spec)
        raise Captured()

    monkeypatch.setattr(bd, "AnsibleModule", fake_module)
    with pytest.raises(Captured):
        bd.main()
    assert seen["files"].get("no_log") is True


def test_a_run_killed_at_the_rename_loses_no_backup_and_the_next_run_names_what_it_left(tmp_path, monkeypatch):
    """Killed at the one command that changes the backup directory (the rename): the backups before it are
    untouched, the hidden partial is never counted nor removed, and the next backup names it."""
    for name in ("20261129T030000Z", "20261130T030000Z"):
        backup(tmp_path, name)
    killed = backup(tmp_path, ".20261201T030000Z.partial")

    real_rename = os.rename

    def kill(src, dst):  # the files' own atomic writes go through; the directory's rename is where it dies
        if src == str(killed):
            raise KeyboardInterrupt("killed at the rename")
        real_rename(src, dst)
    monkeypatch.setattr(bd.os, "rename", kill)
    with pytest.raises(KeyboardInterrupt):
        bd.place(str(killed), str(tmp_path / "20261201T030000Z"), {"hostedcluster.yaml": "kind: HostedCluster\n"}, keep=1)
    assert sorted(os.listdir(str(tmp_path))) == [".20261201T030000Z.partial", "20261129T030000Z", "20261130T030000Z"]
    monkeypatch.undo()

    nxt = backup(tmp_path, ".20261202T030000Z.partial")
    result = bd.place(str(nxt), str(tmp_path / "20261202T030000Z"), {}, keep=2)
    assert result["incomplete"] == [str(killed)]
    assert result["removed"] == [str(tmp_path / "20261129T030000Z")]
    assert sorted(os.listdir(str(tmp_path))) == [".20261201T030000Z.partial", "20261130T030000Z", "20261202T030000Z"]
    assert sorted(os.listdir(str(killed))) == ["etcd-snapshot.db", "etcd-snapshot.db.json", "hostedcluster.yaml"]
