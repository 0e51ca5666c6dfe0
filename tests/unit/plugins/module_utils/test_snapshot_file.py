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

import pytest

from ansible_collections.hcp.etcd.plugins.module_utils import etcd_cli, snapshot_file
from ansible_collections.hcp.etcd.plugins.modules import etcd_snapshot_info

from conftest import snapshot_bytes

KEY = b"k" * 32
SECRET = {"metadata": {"name": "demo-key"}, "data": {"key": base64.b64encode(KEY).decode()}}
HC = {"metadata": {"name": "demo", "namespace": "clusters", "uid": "uid-demo"},
      "spec": {"secretEncryption": {"aescbc": {"activeKey": {"name": "demo-key"}}}}}


def bound_snapshot(tmp_path, data=None, **over):
    """A snapshot file with a sidecar bound to HC (etcd 3.5.16), changed by ``over``."""
    data = snapshot_bytes() if data is None else data
    path = tmp_path / "etcd-snapshot.db"
    path.write_bytes(data)
    sidecar = dict(method="save", sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                   needs_skip_hash_check=False, revision=42)
    sidecar.update(snapshot_file.binding(HC, SECRET, "3.5.16"))
    for key, value in over.items():
        if value is None:
            sidecar.pop(key, None)
        else:
            sidecar[key] = value
    (tmp_path / "etcd-snapshot.db.json").write_text(json.dumps(sidecar))
    return str(path)


def info(path, **params):
    params.setdefault("hosted_cluster", HC)
    params.setdefault("encryption_key_secret", SECRET)
    params.setdefault("etcd_version", "3.5.16")
    return etcd_snapshot_info.check_snapshot(path, **params)


# ---- the file and its sidecar ------------------------------------------------------------


def test_good_bound_snapshot_passes(tmp_path):
    facts = info(bound_snapshot(tmp_path))
    assert facts["method"] == "save" and facts["has_trailer"] and facts["needs_skip_hash_check"] is False
    assert facts["foreign"] == [] and facts["revision"] == 42 and facts["etcd_version_compared"] is True


@pytest.mark.parametrize("damage, message", [
    (lambda d: d[: len(d) // 2], "the file is truncated"),
    (lambda d: d[:100] + bytes([d[100] ^ 1]) + d[101:], "the file was altered or damaged"),
])
def test_file_that_differs_from_its_sidecar_is_refused(tmp_path, damage, message):
    path = bound_snapshot(tmp_path)
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(damage(data))
    with pytest.raises(snapshot_file.SnapshotFileError, match=message):
        snapshot_file.inspect(path)


def test_save_snapshot_with_a_wrong_trailer_is_refused_even_when_the_sidecar_matches(tmp_path):
    good = snapshot_bytes()
    path = bound_snapshot(tmp_path, data=good[:-32] + b"\0" * 32)
    with pytest.raises(snapshot_file.SnapshotFileError, match="trailer is not the sha256 of the rest"):
        snapshot_file.inspect(path)


def test_missing_sidecar_refused_unless_allowed(tmp_path):
    path = tmp_path / "raw.db"
    path.write_bytes(b"bbolt" * 100)
    with pytest.raises(snapshot_file.SnapshotFileError, match="snapshot_allow_missing_sidecar=true"):
        snapshot_file.inspect(str(path))
    facts = snapshot_file.inspect(str(path), allow_missing_sidecar=True)
    assert facts["sidecar"] is None and facts["method"] == "copy_db"


def test_unchanged_sidecar(tmp_path):
    path = bound_snapshot(tmp_path)
    assert snapshot_file.unchanged_sidecar(path)["hosted_cluster_uid"] == "uid-demo"
    with open(path, "ab") as handle:
        handle.write(b"x")
    assert snapshot_file.unchanged_sidecar(path) is None


def test_write_json_0600_is_atomic_and_private(tmp_path):
    target = str(tmp_path / "s.json")
    snapshot_file.write_json_0600(target, {"a": 1})
    assert json.load(open(target)) == {"a": 1} and stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert os.listdir(str(tmp_path)) == ["s.json"]


# ---- finding 8: which control plane -------------------------------------------------------


@pytest.mark.parametrize("over, named", [
    ({"hosted_cluster_namespace": "other-ns"}, "hosted_cluster_namespace other-ns, not clusters"),
    ({"hosted_cluster_uid": "uid-other"}, "hosted_cluster_uid uid-other, not uid-demo"),
    ({"cluster_name": "other"}, "cluster_name other, not demo"),
    ({"encryption_key_fingerprint": "sha256:" + "0" * 64}, "encryption_key_fingerprint sha256:000"),
    ({"etcd_version": "3.3.9"}, "etcd_version 3.3.9, not 3.5.16: etcd upgrades one minor version at a time"),
    # a sidecar that lacks a binding field is refused too (it was skipped before)
    ({"hosted_cluster_namespace": None}, "its sidecar does not record hosted_cluster_namespace"),
    ({"hosted_cluster_uid": None, "encryption_key_fingerprint": None},
     "does not record hosted_cluster_uid, encryption_key_fingerprint"),
])
def test_snapshot_of_another_control_plane_is_refused_naming_what_differs(tmp_path, over, named):
    path = bound_snapshot(tmp_path, **over)
    with pytest.raises(etcd_cli.EtcdCliError) as err:
        info(path)
    assert named in str(err.value) and "-e allow_foreign_snapshot=true" in str(err.value)
    # with the override it passes, and says what differs
    facts = info(path, allow_foreign_snapshot=True)
    assert [p for p in facts["foreign"] if named in p]


def test_a_snapshot_of_a_newer_etcd_is_refused_even_with_the_override_which_is_not_offered(tmp_path):
    """etcd does not start on data of a newer minor: allow_foreign_snapshot would only stop etcd for nothing."""
    path = bound_snapshot(tmp_path, etcd_version="3.6.1")
    for allow in (False, True):
        with pytest.raises(etcd_cli.EtcdCliError) as err:
            info(path, allow_foreign_snapshot=allow)
        message = str(err.value)
        assert "etcd_version 3.6.1, not 3.5.16: a snapshot of a newer etcd cannot be restored onto older members" in message
        assert "upgrade etcd first" in message and "allow_foreign_snapshot" not in message


def test_same_minor_etcd_version_matches_and_unknown_live_version_is_not_compared(tmp_path):
    assert info(bound_snapshot(tmp_path, etcd_version="3.5.21"))["foreign"] == []
    # the upgrade path: a snapshot of the minor before (3.5 onto 3.6, 3.4 onto 3.5)
    assert info(bound_snapshot(tmp_path, etcd_version="3.5.21"), etcd_version="3.6.16")["foreign"] == []
    assert info(bound_snapshot(tmp_path, etcd_version="3.4.23"))["foreign"] == []
    facts = info(bound_snapshot(tmp_path, etcd_version="3.4.23"), etcd_version="")
    assert facts["foreign"] == [] and facts["etcd_version_compared"] is False


def test_without_hosted_cluster_only_the_file_is_checked(tmp_path):
    path = bound_snapshot(tmp_path, hosted_cluster_uid=None)
    assert etcd_snapshot_info.check_snapshot(path)["foreign"] == []


def test_fingerprint_is_the_sha256_of_the_key_never_the_key():
    fingerprint = snapshot_file.key_fingerprint(SECRET)
    assert fingerprint == "sha256:" + hashlib.sha256(KEY).hexdigest()
    assert SECRET["data"]["key"] not in fingerprint
    assert snapshot_file.binding(dict(HC, spec={}))["encryption_key_fingerprint"] == "none"
    with pytest.raises(snapshot_file.SnapshotFileError, match="could not be read"):
        snapshot_file.binding(HC)


def test_save_space_needed():
    assert snapshot_file.save_space_needed(4 * 2 ** 30) == int(4 * 2 ** 30 * 1.1) + 64 * 2 ** 20
