# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The S3 backup store's logic over an in-memory fake of the minio client (the real server is in the e2e)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import io
import json
import os
import stat

import pytest
import zstandard
from minio.error import S3Error
from minio.helpers import read_part_data
import pyrage
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
    """Objects in a dict; ``fail_put`` makes the n-th put raise (a network drop) after reading some bytes.

    A put of unknown length (-1) is read as minio-py reads it: parts of ``part_size + 1`` bytes until one comes
    short (the end of the stream); an exception while reading aborts it (nothing stored, counted in ``aborted``).
    ``received`` keeps every byte each put read; ``during_put(key)`` and ``after_part(key, n)`` are hooks."""

    def __init__(self, buckets=("b",), fail_put=None, denied=False, during_put=None, after_part=None):
        self.objects, self.buckets, self.fail_put, self.denied, self.puts = {}, set(buckets), fail_put, denied, 0
        self.during_put, self.after_part = during_put, after_part
        self.calls, self.received, self.aborted = [], {}, []

    def _auth(self):
        if self.denied:
            raise s3_error("InvalidAccessKeyId")

    def bucket_exists(self, bucket):
        self._auth()
        return bucket in self.buckets

    def put_object(self, bucket, key, data, length, part_size=0, **_kw):
        self._auth()
        self.puts += 1
        self.calls.append((key, length, part_size))
        if self.during_put:
            self.during_put(key)
        if length < 0:
            received = self.received[key] = []
            try:
                while True:
                    part = read_part_data(data, part_size + 1)
                    received.append(part)
                    if self.fail_put == self.puts:
                        raise OSError("connection reset by peer")
                    if self.after_part:
                        self.after_part(key, len(received))
                    if len(part) <= part_size:
                        break
            except Exception:
                self.aborted.append(key)
                raise
            self.objects[(bucket, key)] = b"".join(received)
            return
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


class WatchedResponse(FakeResponse):
    """A response that records the size of every read and what the download directory holds meanwhile."""

    def __init__(self, data, dest, log):
        FakeResponse.__init__(self, data)
        self.dest, self.log = dest, log

    def read(self, size=-1):
        self.log.append((size, sorted(os.listdir(self.dest))))
        return FakeResponse.read(self, size)


def test_download_decodes_as_it_reads_with_no_scratch_copy_and_bounded_reads(tmp_path):
    """The stored object is read in bounded pieces straight into the decoder: the download directory never holds
    more than the plain snapshot being written (no copy of the stored bytes), whatever the encoding."""
    identity = x25519.Identity.generate()
    data = os.urandom(3 * backup_store.CHUNK) + b"k8s" * backup_store.CHUNK  # several chunks, partly compressible
    for recipients, secret in (([], ""), ([str(identity.to_public())], str(identity))):
        client = FakeMinio()
        s = backup_store.BackupStore("s3://b/hcp", endpoint_url="https://127.0.0.1:9000", client=client,
                                     age_recipients=recipients, age_identity=secret)
        url = s.upload_backup(str(local_backup(tmp_path / ("src%d" % len(recipients)), data=data)), "clusters/demo/x")["url"]
        dest, log = tmp_path / ("dl%d" % len(recipients)), []
        key = "hcp/clusters/demo/x/etcd-snapshot.db"
        client.get_object = lambda bucket, k, real=client.get_object: (
            WatchedResponse(client.objects[(bucket, k)], str(dest), log) if k == key else real(bucket, k))
        got = s.download_snapshot(url, str(dest))
        assert open(got["path"], "rb").read() == data
        assert log and all(0 < size <= 16 * backup_store.CHUNK for size, _files in log), [size for size, _f in log][:5]
        assert {name for _size, files in log for name in files} <= {"etcd-snapshot.db.part"}


def test_a_damaged_object_fails_the_download_and_leaves_no_file(tmp_path):
    identity = x25519.Identity.generate()
    for recipients, secret, damage in (([], "", "is damaged"),
                                       ([str(identity.to_public())], str(identity), "does not (decrypt|decode).*damaged")):
        client = FakeMinio()
        s = backup_store.BackupStore("s3://b/hcp", endpoint_url="https://127.0.0.1:9000", client=client,
                                     age_recipients=recipients, age_identity=secret)
        url = s.upload_backup(str(local_backup(tmp_path / ("src%d" % len(recipients)), data=os.urandom(200000))), "clusters/demo/x")["url"]
        key = ("b", "hcp/clusters/demo/x/etcd-snapshot.db")
        body = bytearray(client.objects[key])
        body[len(body) // 2] ^= 0xFF  # one bit flipped in the middle of the stored bytes
        client.objects[key] = bytes(body)
        dest = tmp_path / ("dl%d" % len(recipients))
        with pytest.raises(backup_store.StoreError, match=damage):
            s.download_snapshot(url, str(dest))
        assert os.listdir(str(dest)) == []


def test_an_object_that_decodes_to_more_than_the_sidecar_says_is_refused_while_written(tmp_path):
    client = FakeMinio()
    s = store(client)
    url = s.upload_backup(str(local_backup(tmp_path / "src", data=b"x" * 300000)), "clusters/demo/x")["url"]
    key = ("b", "hcp/clusters/demo/x/etcd-snapshot.db.json")
    side = json.loads(client.objects[key])
    side["size"] = 1000  # the snapshot is 300000 bytes: the decoder stops at the 1001st
    client.objects[key] = json.dumps(side).encode()
    with pytest.raises(backup_store.StoreError, match="decodes to more than the 1000 bytes its sidecar records"):
        s.download_snapshot(url, str(tmp_path / "dl"))
    assert os.listdir(str(tmp_path / "dl")) == []


def test_a_full_local_disk_is_named_as_such_not_as_a_damaged_backup(tmp_path, monkeypatch):
    client = FakeMinio()
    s = store(client)
    url = s.upload_backup(str(local_backup(tmp_path / "src")), "clusters/demo/x")["url"]

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(backup_store.os, "fsync", full)
    with pytest.raises(backup_store.StoreError, match="cannot write .*No space left on device; free space in"):
        s.download_snapshot(url, str(tmp_path / "dl"))
    assert os.listdir(str(tmp_path / "dl")) == []


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


# ---- the streamed upload: encoded while it is sent, no scratch copy, errors of the encoder's thread surface ----

KEY = "hcp/clusters/demo/20261130T030000Z/"


def encoder_threads():
    import threading
    return [t for t in threading.enumerate() if t.name == "hcp-etcd-encrypt"]


def age_store(client, **kw):
    identity = x25519.Identity.generate()
    s = backup_store.BackupStore("s3://b/hcp", endpoint_url="https://127.0.0.1:9000", client=client,
                                 age_recipients=[str(identity.to_public())], **kw)
    return s, identity


def decode(body, identity=None):
    if identity is not None:
        body = pyrage.decrypt(body, [identity])
    return zstandard.ZstdDecompressor().decompressobj().decompress(body)


def test_upload_streams_with_no_scratch_copy_beside_the_backup(tmp_path):
    seen = []

    def during_put(key):  # what the backup's parent directory holds while each object is sent
        seen.append((key.rsplit("/", 1)[-1], sorted(os.listdir(str(tmp_path)))))

    client = FakeMinio(during_put=during_put)
    s, _identity = age_store(client)
    d = local_backup(tmp_path)
    before = sorted(os.listdir(str(d)))
    s.upload_backup(str(d), "clusters/demo/20261130T030000Z")
    assert [name for name, _listing in seen] == ["encryption-key.yaml", "etcd-snapshot.db", "hostedcluster.yaml", "etcd-snapshot.db.json"]
    assert all(listing == ["20261130T030000Z"] for _name, listing in seen), seen  # no scratch directory, ever
    assert sorted(os.listdir(str(d))) == before and sorted(os.listdir(str(tmp_path))) == ["20261130T030000Z"]
    # every file but the sidecar is a multipart upload of unknown length in PART_SIZE parts
    assert [(k.rsplit("/", 1)[-1], n, p) for k, n, p in client.calls[:-1]] == [
        (name, -1, backup_store.PART_SIZE) for name in ("encryption-key.yaml", "etcd-snapshot.db", "hostedcluster.yaml")]
    assert client.calls[-1][0].endswith("etcd-snapshot.db.json") and client.calls[-1][1] > 0
    assert not encoder_threads()


@pytest.mark.parametrize("encrypted", [True, False])
def test_the_recorded_stored_sha256_and_size_are_those_of_the_bytes_received(tmp_path, monkeypatch, encrypted):
    monkeypatch.setattr(backup_store, "PART_SIZE", 64 * 1024)  # many parts, each read by the client in one piece
    client = FakeMinio()
    if encrypted:
        s, identity = age_store(client)
    else:
        s, identity = store(client), None
    data = os.urandom(700 * 1024) + b"compressible" * 50000
    d = local_backup(tmp_path, data=data)
    result = s.upload_backup(str(d), "clusters/demo/20261130T030000Z")
    side = json.loads(client.objects[("b", KEY + "etcd-snapshot.db.json")])
    assert sorted(side["store"]["files"]) == ["encryption-key.yaml", "etcd-snapshot.db", "hostedcluster.yaml"]
    for name, meta in side["store"]["files"].items():
        received = b"".join(client.received[KEY + name])
        assert meta == {"sha256": hashlib.sha256(received).hexdigest(), "size": len(received)}, name
        assert client.objects[("b", KEY + name)] == received
        assert decode(received, identity) == (d / name).read_bytes(), name
    parts = client.received[KEY + "etcd-snapshot.db"]
    assert len(parts) > 5 and all(len(p) == backup_store.PART_SIZE + 1 for p in parts[:-1])  # full parts, then the end
    assert result["stored_size"] == side["store"]["files"]["etcd-snapshot.db"]["size"]
    assert side["sha256"] == result["sha256"] == hashlib.sha256(data).hexdigest()


def test_the_encoder_reads_at_most_a_bounded_window_ahead_of_the_upload(tmp_path, monkeypatch):
    monkeypatch.setattr(backup_store, "PART_SIZE", 256 * 1024)
    monkeypatch.setattr(backup_store, "ENCODE_BUFFER", 256 * 1024)
    plain_read = []

    class CountingReader(backup_store.HashingReader):
        def read(self, size=-1):
            data = super(CountingReader, self).read(size)
            plain_read.append(len(data))
            return data

    monkeypatch.setattr(backup_store, "HashingReader", CountingReader)
    ahead = {}

    def after_part(key, n):
        if key.endswith("etcd-snapshot.db") and n == 1:
            import time
            time.sleep(0.3)  # the encoder's thread runs on until its buffer is full
            ahead["plain"] = sum(plain_read)

    client = FakeMinio(after_part=after_part)
    s, identity = age_store(client)
    data = os.urandom(8 * 1024 * 1024)  # incompressible: the stored bytes are as many as the plain ones
    d = local_backup(tmp_path, data=data, key=False)
    del plain_read[:]
    s.upload_backup(str(d), "clusters/demo/20261130T030000Z")
    # one part sent: the file was read no further than that part, the buffer and the encoders' own buffers
    assert 256 * 1024 < ahead["plain"] < 2 * 1024 * 1024, ahead
    assert decode(client.objects[("b", KEY + "etcd-snapshot.db")], identity) == data


@pytest.mark.parametrize("encrypted", [True, False])
def test_an_encoder_failure_mid_stream_removes_what_was_uploaded(tmp_path, monkeypatch, encrypted):
    monkeypatch.setattr(backup_store, "PART_SIZE", 128 * 1024)

    class FailingReader(backup_store.HashingReader):  # the disk fails 1 MiB into the snapshot
        def __init__(self, handle):
            super(FailingReader, self).__init__(handle)
            self.done = 0

        def read(self, size=-1):
            if self.done > 1024 * 1024:
                raise OSError(5, "Input/output error")
            data = super(FailingReader, self).read(size)
            self.done += len(data)
            return data

    monkeypatch.setattr(backup_store, "HashingReader", FailingReader)
    client = FakeMinio()
    s = age_store(client)[0] if encrypted else store(client)
    d = local_backup(tmp_path, data=os.urandom(3 * 1024 * 1024))
    with pytest.raises(backup_store.StoreError, match=r"etcd-snapshot.db \(zstd(\+age)?\): reading or encoding .*etcd-snapshot.db "
                                                      r"failed while it was uploaded \(OSError: .*Input/output error\); nothing"):
        s.upload_backup(str(d), "clusters/demo/20261130T030000Z")
    assert len(client.received[KEY + "etcd-snapshot.db"]) >= 2  # parts had been sent before the failure
    assert client.aborted == [KEY + "etcd-snapshot.db"]
    assert KEY + "encryption-key.yaml" in client.received  # uploaded before the snapshot, then removed
    assert client.objects == {} and s.list_backups("clusters/demo") == ([], [])
    assert not encoder_threads()


def test_the_encryption_threads_failure_surfaces_whatever_the_client_raises(tmp_path, monkeypatch):
    real = backup_store.pyrage.encrypt_io

    def broken_encrypt_io(reader, writer, recipients):
        writer.write(b"age-encryption.org/v1\n" + os.urandom(200000))
        raise RuntimeError("age: the recipient stanza cannot be written")

    class AbortFails(FakeMinio):  # the client's own error (its abort failed) replaces the reader's
        def put_object(self, bucket, key, data, length, **kw):
            try:
                return FakeMinio.put_object(self, bucket, key, data, length, **kw)
            except backup_store.StoreError:
                raise s3_error("NoSuchUpload")

    client = AbortFails()
    s = age_store(client)[0]
    d = local_backup(tmp_path, key=False)
    monkeypatch.setattr(backup_store.pyrage, "encrypt_io", broken_encrypt_io)
    with pytest.raises(backup_store.StoreError, match="reading or encoding .*etcd-snapshot.db failed while it was uploaded "
                                                      r"\(RuntimeError: age: the recipient stanza cannot be written\)") as err:
        s.upload_backup(str(d), "clusters/demo/20261130T030000Z")
    assert isinstance(err.value.__cause__, RuntimeError)
    assert client.objects == {} and client.aborted == [KEY + "etcd-snapshot.db"]
    assert not encoder_threads()
    monkeypatch.setattr(backup_store.pyrage, "encrypt_io", real)
    assert s.upload_backup(str(d), "clusters/demo/20261130T030000Z")["encoding"] == "zstd+age"


def test_a_cut_upload_stops_the_encryption_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(backup_store, "PART_SIZE", 128 * 1024)
    monkeypatch.setattr(backup_store, "ENCODE_BUFFER", 128 * 1024)
    client = FakeMinio(fail_put=1)  # the first part of the snapshot is lost: the thread waits on a full buffer
    s = age_store(client)[0]
    d = local_backup(tmp_path, data=os.urandom(4 * 1024 * 1024), key=False)
    with pytest.raises(backup_store.StoreError, match="connection reset"):
        s.upload_backup(str(d), "clusters/demo/20261130T030000Z")
    assert client.objects == {} and client.aborted == [KEY + "etcd-snapshot.db"]
    assert not encoder_threads()


def test_a_snapshot_that_changed_is_never_completed_in_the_store(tmp_path, monkeypatch):
    monkeypatch.setattr(backup_store, "PART_SIZE", 64 * 1024)
    client = FakeMinio()
    s = age_store(client)[0]
    d = local_backup(tmp_path, data=os.urandom(1024 * 1024), sidecar_sha="0" * 64)
    with pytest.raises(backup_store.StoreError, match="its sidecar says 0000.*nothing was left in the store"):
        s.upload_backup(str(d), "clusters/demo/20261130T030000Z")
    # every part was sent, but the end of the stream (which completes the object) was refused
    assert sum(len(p) for p in client.received[KEY + "etcd-snapshot.db"]) > 1024 * 1024
    assert client.aborted == [KEY + "etcd-snapshot.db"] and client.objects == {}


def test_an_object_whose_completion_answer_was_lost_is_removed(tmp_path):
    class LostAnswer(FakeMinio):  # the server completed the snapshot, the client got a reset instead of the answer
        def put_object(self, bucket, key, data, length, **kw):
            FakeMinio.put_object(self, bucket, key, data, length, **kw)
            if key.endswith("etcd-snapshot.db"):
                raise OSError("connection reset by peer")

    client = LostAnswer()
    s = store(client)
    with pytest.raises(backup_store.StoreError, match="connection reset.*while uploading"):
        s.upload_backup(str(local_backup(tmp_path)), "clusters/demo/20261130T030000Z")
    assert client.objects == {}
