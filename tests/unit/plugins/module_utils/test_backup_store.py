# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The S3 backup store's logic over an in-memory fake of the minio client (the real server is in the e2e)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import io
import json
import os
import stat

import pytest
import zstandard
from minio.error import S3Error
from pyrage import x25519

from ansible_collections.hcp.etcd.plugins.module_utils import backup_store


class FakeObject:
    def __init__(self, name, size):
        self.object_name, self.size = name, size


class FakeResponse(io.BytesIO):
    def stream(self, amt):
        return iter(lambda: self.read(amt), b"")

    def release_conn(self):
        pass


def s3_error(code):
    return S3Error(None, code, code, "/", "req", "host")


class FakeMinio:
    """Objects in a dict; ``fail_put`` makes the n-th put raise (a network drop) after reading some bytes."""

    def __init__(self, buckets=("b",), fail_put=None, denied=False):
        self.objects, self.buckets, self.fail_put, self.denied, self.puts = {}, set(buckets), fail_put, denied, 0

    def _auth(self):
        if self.denied:
            raise s3_error("InvalidAccessKeyId")

    def bucket_exists(self, bucket):
        self._auth()
        return bucket in self.buckets

    def put_object(self, bucket, key, data, length, **_kw):
        self._auth()
        self.puts += 1
        if self.fail_put == self.puts:
            data.read(length // 2)
            raise OSError("connection reset by peer")
        body = b""
        while len(body) < length:
            chunk = data.read(length - len(body))
            if not chunk:
                break
            body += chunk
        self.objects[(bucket, key)] = body

    def remove_object(self, bucket, key):
        self.objects.pop((bucket, key), None)

    def remove_objects(self, bucket, deletes):
        for d in deletes:
            self.objects.pop((bucket, d.name), None)
        return iter(())

    def get_object(self, bucket, key):
        self._auth()
        if (bucket, key) not in self.objects:
            raise s3_error("NoSuchKey")
        return FakeResponse(self.objects[(bucket, key)])

    def list_objects(self, bucket, prefix="", recursive=True):
        return [FakeObject(k, len(v)) for (b, k), v in sorted(self.objects.items()) if b == bucket and k.startswith(prefix)]


def local_backup(root, name="20261130T030000Z", data=b"snapshot-bytes" * 1000, sidecar_sha=None, key=True):
    d = root / name
    d.mkdir(parents=True)
    (d / "etcd-snapshot.db").write_bytes(data)
    side = {"sha256": sidecar_sha or hashlib.sha256(data).hexdigest(), "size": len(data), "revision": 42,
            "etcd_version": "3.5.35", "cluster_name": "demo", "hosted_cluster_namespace": "clusters", "finished_at": "2026-11-30T03:00:02Z"}
    (d / "etcd-snapshot.db.json").write_text(json.dumps(side))
    (d / "hostedcluster.yaml").write_text("kind: HostedCluster\n")
    if key:
        (d / "encryption-key.yaml").write_text("data: {key: c2VjcmV0}\n")
    return d


def store(client=None, url="s3://b/hcp"):
    return backup_store.BackupStore(url, endpoint_url="https://127.0.0.1:9000", client=client or FakeMinio())


def test_upload_puts_the_sidecar_last_and_keeps_the_key_out(tmp_path):
    s = store()
    d = local_backup(tmp_path)
    result = s.upload_backup(str(d), "clusters/demo/20261130T030000Z", exclude=["encryption-key.yaml"])
    assert result["keys"][-1] == "hcp/clusters/demo/20261130T030000Z/etcd-snapshot.db.json"
    assert "hcp/clusters/demo/20261130T030000Z/encryption-key.yaml" not in result["keys"]
    assert result["sha256"] == hashlib.sha256((d / "etcd-snapshot.db").read_bytes()).hexdigest()
    assert result["url"] == "s3://b/hcp/clusters/demo/20261130T030000Z/etcd-snapshot.db"
    stored = s.client.objects[("b", "hcp/clusters/demo/20261130T030000Z/etcd-snapshot.db")]
    assert zstandard.ZstdDecompressor().decompressobj().decompress(stored) == (d / "etcd-snapshot.db").read_bytes()
    assert result["encoding"] == "zstd" and result["stored_size"] == len(stored) < result["size"]
    side = json.loads(s.client.objects[("b", "hcp/clusters/demo/20261130T030000Z/etcd-snapshot.db.json")])
    assert side["store"]["files"]["etcd-snapshot.db"] == {"sha256": hashlib.sha256(stored).hexdigest(), "size": len(stored)}
    assert side["sha256"] == result["sha256"]
    assert not os.path.exists(str(tmp_path / ".20261130T030000Z.upload"))  # the scratch directory is gone


def test_a_cut_upload_leaves_nothing_listed(tmp_path):
    client = FakeMinio(fail_put=2)  # the second put fails mid-way (a network drop)
    s = store(client)
    d = local_backup(tmp_path, key=False)  # files: etcd-snapshot.db, hostedcluster.yaml, then the sidecar
    with pytest.raises(backup_store.StoreError, match="connection reset"):
        s.upload_backup(str(d), "clusters/demo/20261130T030000Z")
    assert client.objects == {}
    assert s.list_backups("clusters/demo") == ([], [])


def test_a_snapshot_that_differs_from_its_sidecar_is_not_stored(tmp_path):
    client = FakeMinio()
    s = store(client)
    d = local_backup(tmp_path, sidecar_sha="0" * 64)
    with pytest.raises(backup_store.StoreError, match="its sidecar says 0000.*nothing was left in the store"):
        s.upload_backup(str(d), "clusters/demo/20261130T030000Z")
    assert client.objects == {}


def test_download_checks_the_sha256_and_writes_0600(tmp_path):
    client = FakeMinio()
    s = store(client)
    s.upload_backup(str(local_backup(tmp_path / "src")), "clusters/demo/20261130T030000Z")
    url = "s3://b/hcp/clusters/demo/20261130T030000Z/etcd-snapshot.db"
    got = s.download_snapshot(url, str(tmp_path / "dl"))
    assert got["downloaded"] is True
    assert open(got["path"], "rb").read() == (tmp_path / "src" / "20261130T030000Z" / "etcd-snapshot.db").read_bytes()
    for f in (got["path"], got["path"] + ".json"):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(tmp_path / "dl")).st_mode) == 0o700
    assert s.download_snapshot(url, str(tmp_path / "dl"))["downloaded"] is False  # a matching copy is reused
    # an object replaced behind the sidecar's back is refused and leaves no file
    client.objects[("b", "hcp/clusters/demo/20261130T030000Z/etcd-snapshot.db")] = b"tampered"
    os.unlink(got["path"])
    with pytest.raises(backup_store.StoreError, match="damaged or was replaced"):
        s.download_snapshot(url, str(tmp_path / "dl"))
    assert sorted(os.listdir(str(tmp_path / "dl"))) == ["etcd-snapshot.db.json"]


SECRET_VALUE = b"s3cr3t-value-of-a-seeded-Secret-" * 8


def test_encrypted_backup_holds_no_plaintext_and_needs_the_identity(tmp_path):
    identity = x25519.Identity.generate()
    other = x25519.Identity.generate()
    client = FakeMinio()
    s = backup_store.BackupStore("s3://b/hcp", endpoint_url="https://127.0.0.1:9000", client=client,
                                 age_recipients=[str(identity.to_public())])
    data = b"header" + SECRET_VALUE + os.urandom(4096) + SECRET_VALUE
    d = local_backup(tmp_path / "src", data=data)
    (d / "encryption-key.yaml").write_bytes(b"data: {key: " + SECRET_VALUE + b"}\n")
    result = s.upload_backup(str(d), "clusters/demo/20261130T030000Z")
    assert result["encoding"] == "zstd+age"
    for (_b, key), body in client.objects.items():
        if not key.endswith(".json"):
            assert SECRET_VALUE[:16] not in body, key  # no piece of the secret value in any stored object
            assert body.startswith(b"age-encryption.org/v1"), key
    side = json.loads(client.objects[("b", "hcp/clusters/demo/20261130T030000Z/etcd-snapshot.db.json")])
    assert side["store"]["recipients"] == [str(identity.to_public())]
    url = result["url"]

    def reader(secret):
        return backup_store.BackupStore("s3://b/hcp", endpoint_url="https://127.0.0.1:9000", client=client, age_identity=secret)

    with pytest.raises(backup_store.StoreError, match="is encrypted to age recipient.*backup_store_age_identity_file"):
        reader("").download_snapshot(url, str(tmp_path / "dl"))
    with pytest.raises(backup_store.StoreError, match="does not decrypt this backup"):
        reader("# other\n%s\n" % other).download_snapshot(url, str(tmp_path / "dl"))
    assert not os.path.exists(str(tmp_path / "dl" / "etcd-snapshot.db"))
    got = reader("# created: now\n%s\n" % identity).download_snapshot(url, str(tmp_path / "dl"))
    assert open(got["path"], "rb").read() == data and got["downloaded"]
    local_side = json.loads(open(got["path"] + ".json").read())
    assert "store" not in local_side and local_side["sha256"] == hashlib.sha256(data).hexdigest()
    assert sorted(os.listdir(str(tmp_path / "dl"))) == ["etcd-snapshot.db", "etcd-snapshot.db.json"]


def test_uncompressed_and_bad_recipients(tmp_path):
    client = FakeMinio()
    s = backup_store.BackupStore("s3://b/hcp", endpoint_url="https://127.0.0.1:9000", client=client, compression="none")
    d = local_backup(tmp_path)
    assert s.upload_backup(str(d), "clusters/demo/x")["encoding"] == "none"
    assert client.objects[("b", "hcp/clusters/demo/x/etcd-snapshot.db")] == (d / "etcd-snapshot.db").read_bytes()
    with pytest.raises(backup_store.StoreError, match="not an age X25519 recipient"):
        backup_store.BackupStore("s3://b", endpoint_url="https://h:1", client=client, age_recipients=["ssh-ed25519 AAAA"])


def test_download_refuses_an_incomplete_backup_and_another_bucket(tmp_path):
    client = FakeMinio()
    s = store(client)
    client.objects[("b", "hcp/clusters/demo/20261130T030000Z/etcd-snapshot.db")] = b"half"
    with pytest.raises(backup_store.StoreError, match="not a complete backup"):
        s.download_snapshot("s3://b/hcp/clusters/demo/20261130T030000Z/etcd-snapshot.db", str(tmp_path))
    with pytest.raises(backup_store.StoreError, match="give -e backup_store=s3://other"):
        s.download_snapshot("s3://other/x/etcd-snapshot.db", str(tmp_path))


def test_prune_counts_complete_backups_only_and_keeps_the_current_one(tmp_path):
    client = FakeMinio()
    s = store(client)
    names = ["20261101T030000Z", "20261102T030000Z", "20261103T030000Z", "20261104T030000Z"]
    for n in names:
        s.upload_backup(str(local_backup(tmp_path / n, name=n)), "clusters/demo/" + n)
    # an upload that never finished: a snapshot object without its sidecar
    client.objects[("b", "hcp/clusters/demo/20261105T030000Z/etcd-snapshot.db")] = b"half"
    result = s.prune("clusters/demo", keep=2, current="20261104T030000Z")
    assert result["removed"] == ["20261102T030000Z", "20261101T030000Z"]
    assert result["incomplete"] == ["20261105T030000Z"]
    listed, incomplete = s.list_backups("clusters/demo")
    assert [b["name"] for b in listed] == ["20261104T030000Z", "20261103T030000Z"]
    assert listed[0]["revision"] == 42 and listed[0]["url"].endswith("/20261104T030000Z/etcd-snapshot.db")
    assert not [k for (_b, k) in client.objects if "20261101" in k or "20261102" in k]


def test_check_names_the_fix(tmp_path):
    with pytest.raises(backup_store.StoreError, match="bucket nope does not exist"):
        store(FakeMinio(), url="s3://nope/x").check()
    with pytest.raises(backup_store.StoreError, match="refused the credentials.*AWS_ACCESS_KEY_ID"):
        store(FakeMinio(denied=True)).check()
    client = FakeMinio()
    assert store(client).check() == {"bucket": "b", "prefix": "hcp"}
    assert client.objects == {}  # the probe object is removed


@pytest.mark.parametrize("url", ["b/x", "s3:///x", "https://b/x", ""])
def test_bad_urls_are_refused(url):
    with pytest.raises(backup_store.StoreError, match="give -e backup_store=s3://"):
        backup_store.parse_url(url)


def test_no_credentials_is_refused_before_any_request():
    with pytest.raises(backup_store.StoreError, match="set AWS_ACCESS_KEY_ID"):
        backup_store.BackupStore("s3://b", endpoint_url="https://127.0.0.1:9000")


def test_a_drill_verdict_is_recorded_beside_the_backup_and_listed(tmp_path):
    client = FakeMinio()
    s = store(client)
    url = s.upload_backup(str(local_backup(tmp_path)), "clusters/demo/20261130T030000Z")["url"]
    assert s.list_backups("clusters/demo")[0][0]["drill"] == "never drilled"
    s.record_drill(url, {"verdict": "OK", "drilled_at": "2026-11-30T04:00:00Z"})
    assert json.loads(client.objects[("b", "hcp/clusters/demo/20261130T030000Z/drill.json")])["verdict"] == "OK"
    assert s.list_backups("clusters/demo")[0][0]["drill"] == "OK at 2026-11-30T04:00:00Z"
    with pytest.raises(backup_store.StoreError, match="is not a backup's etcd-snapshot.db"):
        s.record_drill("s3://b/hcp/clusters/demo/x/other.db", {})
    # pruning removes the drill's verdict with its backup
    s.upload_backup(str(local_backup(tmp_path / "2", name="20261201T030000Z")), "clusters/demo/20261201T030000Z")
    s.prune("clusters/demo", keep=1)
    assert not [k for (_b, k) in client.objects if "20261130T030000Z" in k]
