# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An S3-compatible backup store (MinIO, Ceph RGW / ODF, NooBaa, AWS S3): the one place that talks to it.

A store is ``s3://bucket/prefix``; below the prefix a backup has the layout of a local backup directory:
``<hosted_cluster_namespace>/<cluster_name>/<UTC time>/etcd-snapshot.db`` with its sidecar
``etcd-snapshot.db.json`` and the manifests. A backup counts only when its sidecar is there: the sidecar
is uploaded last, after every other file of the backup is stored and the snapshot's sha256 (computed
from the bytes sent) equals the sidecar's. An upload cut short aborts its multipart upload and leaves
no sidecar, so it is never listed, restored or counted by retention.

The client is minio-py (``minio`` on PyPI): boto3's botocore requires python-dateutil<3 and the
kubernetes client (37) requires python-dateutil>=3, so boto3 cannot be installed beside the
kubernetes client these modules use. Endpoint, region, credentials and CA bundle come from the module's
options or the usual variables (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN, AWS_CA_BUNDLE). Addressing is path-style for every endpoint other than AWS's.

What the store holds is encoded: compressed with zstd (``zstandard``, on by default) and, given age
recipients, encrypted to them (``pyrage``); the object names stay those of the local backup. The stored
sidecar is the local sidecar (in clear: it holds no secret) plus ``store``: the encoding, the age
recipients (public keys) and each stored object's sha256 and size. A download checks the stored bytes'
sha256, decrypts and decompresses file to file, and checks the plain snapshot's sha256 against the sidecar.

An upload is streamed: each file is encoded while it is sent (``EncodedStream``, a multipart upload of
unknown length in ``PART_SIZE`` parts), with no scratch copy on the controller and memory bounded by a
few parts whatever the file's size. The stored sha256 and size are those of the bytes handed to the
client; the snapshot's plain sha256 is checked when the encoder reaches the end of the file, before the
client can complete the object.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import hashlib
import io
import json
import os
import threading

from ansible.module_utils.six.moves.urllib.parse import urlparse

from ansible_collections.hcp.etcd.plugins.module_utils import etcd_cli, snapshot_file

try:
    import zstandard
    HAS_ZSTD = True
except ImportError:
    zstandard = None
    HAS_ZSTD = False

try:
    import pyrage
    from pyrage import x25519
    HAS_AGE = True
except ImportError:
    pyrage = x25519 = None
    HAS_AGE = False

try:
    import minio
    import urllib3
    from minio.deleteobjects import DeleteObject
    from minio.error import S3Error
    HAS_MINIO = True
except ImportError:  # reported by the module with missing_required_lib
    minio = urllib3 = DeleteObject = None
    HAS_MINIO = False

    class S3Error(Exception):
        pass

SIDECAR = snapshot_file.SIDECAR
SNAPSHOT = snapshot_file.SNAPSHOT
DRILL = "drill.json"
# Multipart part size: memory on the controller is at most a few parts, whatever the snapshot's size.
PART_SIZE = 16 * 1024 * 1024
CHUNK = 1024 * 1024
# Encrypted bytes waiting between the age encryption's thread and the upload: at most this much (plus one age chunk).
ENCODE_BUFFER = 4 * CHUNK
# How long a stopped upload waits for the encryption's thread to end (it ends at its next write).
ENCODER_JOIN_TIMEOUT = 60
CREDENTIAL_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken")


class StoreError(Exception):
    """The store refused or cannot be reached; the message names the fix."""


def is_store_url(value):
    return isinstance(value, str) and value.startswith("s3://")


def parse_url(url):
    """(bucket, prefix without slashes at either end) of ``s3://bucket/prefix``."""
    parsed = urlparse(url or "")
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StoreError("backup store %r is not an s3://bucket[/prefix] URL; give -e backup_store=s3://<bucket>/<prefix>" % url)
    return parsed.netloc, parsed.path.strip("/")


def join(*parts):
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


class HashingWriter:
    """A writer that hashes and counts what is written through it; more than ``max_size`` bytes is refused."""

    def __init__(self, handle, max_size=None):
        self._handle = handle
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.max_size = max_size

    def write(self, data):
        self.sha256.update(data)
        self.size += len(data)
        if self.max_size is not None and self.size > self.max_size:
            raise StoreError("the backup decodes to more than the %d bytes its sidecar records: it is damaged; restore "
                             "another backup" % self.max_size)
        self._handle.write(data)
        return len(data)

    def flush(self):
        self._handle.flush()


def _copy(reader, writer):
    for chunk in iter(lambda: reader.read(CHUNK), b""):
        writer.write(chunk)


def encoding_name(compression, recipients):
    return "+".join(e for e in ("zstd" if compression == "zstd" else "", "age" if recipients else "") if e) or "none"


def parse_recipients(recipients):
    """age X25519 recipients (``age1...``); refuses anything else naming it."""
    parsed = []
    for text in recipients or ():
        try:
            parsed.append(x25519.Recipient.from_str(text.strip()))
        except Exception:
            raise StoreError("%r is not an age X25519 recipient (age1...); give the public keys `age-keygen` prints "
                             "(or `age-keygen -y KEYFILE`)" % text[:80])
    return parsed


def parse_identities(text):
    """The age identities (``AGE-SECRET-KEY-...`` lines) of an identity file's content."""
    identities = []
    for line in (text or "").splitlines():
        line = line.strip()
        if line.startswith("AGE-SECRET-KEY-"):
            try:
                identities.append(x25519.Identity.from_str(line))
            except Exception:
                raise StoreError("an AGE-SECRET-KEY line of the age identity is not valid; give the file `age-keygen -o` wrote")
    return identities


def encode_file(src, dst, compression="zstd", recipients=()):
    """Write ``src`` to ``dst`` (0600) compressed and/or encrypted, file to file with flat memory.

    Returns the plain content's sha256 and the written (stored) content's sha256 and size."""
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(src, "rb") as handle, os.fdopen(fd, "wb") as out:
        plain = HashingReader(handle)
        reader = zstandard.ZstdCompressor(level=3).stream_reader(plain) if compression == "zstd" else plain
        stored = HashingWriter(out)
        if recipients:
            pyrage.encrypt_io(reader, stored, list(recipients))
        else:
            _copy(reader, stored)
        out.flush()
        os.fsync(out.fileno())
    return plain.sha256.hexdigest(), stored.sha256.hexdigest(), stored.size


def decode_file(src, dst, encoding, identities=()):
    """Write the plain content of the stored file ``src`` to ``dst`` (0600); returns its sha256."""
    with open(src, "rb") as handle:
        return decode_stream(handle, dst, encoding, identities)


def decode_stream(reader, dst, encoding, identities=(), max_size=None):
    """Write the plain content of the stored bytes ``reader`` gives to ``dst`` (0600), decrypted and decompressed
    as they come (no scratch copy); returns its sha256. More than ``max_size`` plain bytes is a damaged backup."""
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        plain = HashingWriter(out, max_size)
        sink = zstandard.ZstdDecompressor().stream_writer(plain, closefd=False) if "zstd" in encoding else plain
        if "age" in encoding:
            try:
                pyrage.decrypt_io(reader, sink, list(identities))
            except pyrage.DecryptError as exc:
                raise StoreError("the age identity given does not decrypt this backup (%s); give the identity of one of the "
                                 "recipients the backup was encrypted to" % exc)
        else:
            _copy(reader, sink)
        if sink is not plain:
            sink.flush()
        out.flush()
        os.fsync(out.fileno())
    return plain.sha256.hexdigest()


class HashingReader:
    """A file object that hashes what is read from it (the bytes that go on the wire)."""

    def __init__(self, handle):
        self._handle = handle
        self.sha256 = hashlib.sha256()

    def read(self, size=-1):
        data = self._handle.read(size)
        self.sha256.update(data)
        return data


class _Buffer:
    """A bounded buffer between a thread that writes (the age encryption, push-based) and a reader that pulls.

    ``write`` blocks while ``limit`` bytes wait and fails once the reader has closed it; ``get`` blocks until
    there is something to read or the writer has finished (then it returns b"")."""

    def __init__(self, limit):
        self._cond = threading.Condition()
        self._chunks = collections.deque()
        self._size = 0
        self._limit = limit
        self._finished = False
        self._closed = False

    def write(self, data):
        data = bytes(data)
        with self._cond:
            while self._size >= self._limit and not self._closed:
                self._cond.wait()
            if self._closed:
                raise BrokenPipeError("the upload stopped reading")
            self._chunks.append(data)
            self._size += len(data)
            self._cond.notify_all()
        return len(data)

    def flush(self):
        pass

    def finish(self):
        """The writer is done (whether it succeeded or not)."""
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def close(self):
        """The reader is done: drop what waits, make the writer's next write fail."""
        with self._cond:
            self._closed = True
            self._chunks.clear()
            self._size = 0
            self._cond.notify_all()

    def get(self, size):
        """At most ``size`` bytes; b"" once the writer finished and everything was read."""
        with self._cond:
            while not self._chunks and not self._finished and not self._closed:
                self._cond.wait()
            if not self._chunks:
                return b""
            chunk = self._chunks.popleft()
            if len(chunk) > size:
                self._chunks.appendleft(chunk[size:])
                chunk = chunk[:size]
            self._size -= len(chunk)
            self._cond.notify_all()
            return chunk


class _FirstError:
    """A reader that remembers the first exception of the reader it wraps (pyrage reports it only as text)."""

    def __init__(self, reader):
        self._reader = reader
        self.error = None

    def read(self, size=-1):
        try:
            return self._reader.read(size)
        except BaseException as exc:
            if self.error is None:
                self.error = exc
            raise


class EncodedStream:
    """A local file encoded on the fly (zstd, age), as the reader of a put_object of unknown length.

    The file is read once, through a hash of its plain content; zstd pulls (``stream_reader``); age pushes
    (``pyrage.encrypt_io``), so it runs in a thread that writes into a bounded buffer (``ENCODE_BUFFER``).
    ``read(n)`` returns n bytes but at the end (the client builds each part from one read), and hashes and
    counts what it returns: ``sha256`` and ``size`` are those of the bytes the client got. When the encoded
    bytes end (the file's end, or the encoder's failure), before the client is told so and can complete the
    object, the thread is joined and its failure (or the file's or zstd's without a thread), or a plain
    sha256 other than ``plain_sha256``, is raised as a StoreError; it stays in ``error`` for the caller,
    whatever the client did with it. ``close`` stops the thread (its next write fails) and closes the file."""

    def __init__(self, path, compression="zstd", recipients=(), plain_sha256=None, what=None):
        self.path = path
        self.what = what or path
        self.plain_sha256 = plain_sha256
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.error = None
        self.finished = False
        self._thread = self._buffer = None
        self._thread_error = None
        self._handle = open(path, "rb")
        self.plain = HashingReader(self._handle)
        self._source = _FirstError(zstandard.ZstdCompressor(level=3).stream_reader(self.plain) if compression == "zstd" else self.plain)
        if recipients:
            self._buffer = _Buffer(ENCODE_BUFFER)
            self._thread = threading.Thread(target=self._encrypt, args=(list(recipients),), name="hcp-etcd-encrypt")
            self._thread.daemon = True
            self._thread.start()
            self._pull = self._buffer.get
        else:
            self._pull = self._source.read

    def _encrypt(self, recipients):
        try:
            pyrage.encrypt_io(self._source, self._buffer, recipients)
        except BaseException as exc:  # surfaces in the reader at the end of the stream
            self._thread_error = self._source.error or exc
        finally:
            self._buffer.finish()

    def _fail(self, exc):
        if self.error is None:
            self.error = StoreError("%s: reading or encoding %s failed while it was uploaded (%s: %s); nothing of this backup "
                                    "was left in the store; back up again" % (self.what, self.path, type(exc).__name__, exc))
            self.error.__cause__ = exc
        return self.error

    def _end(self):
        if self._thread is not None:
            self._thread.join()
            if self._thread_error is not None:
                raise self._fail(self._thread_error)
        plain = self.plain.sha256.hexdigest()
        if self.plain_sha256 is not None and plain != self.plain_sha256:
            self.error = StoreError("the snapshot %s has sha256 %s, its sidecar says %s: the local file changed; nothing was "
                                    "left in the store; back up again" % (self.path, plain, self.plain_sha256))
            raise self.error
        self.finished = True

    def read(self, size=-1):
        if self.error is not None:
            raise self.error
        if self.finished or size == 0:
            return b""
        # one bytes object of ``size`` bytes: the client concatenates what each read returns (quadratic in small
        # pieces); a BytesIO's getvalue() hands over its own buffer (no second copy of the part in memory)
        first, joined, got = b"", None, 0
        while size is None or size < 0 or got < size:
            try:
                chunk = self._pull(size - got if size is not None and size >= 0 else CHUNK)
            except Exception as exc:  # the file or zstd, without a thread
                raise self._fail(self._source.error or exc)
            if not chunk:
                self._end()
                break
            if not got:
                first = chunk
            else:
                if joined is None:
                    joined = io.BytesIO()
                    if size is not None and size > 0:  # the part's memory taken once, not grown piece by piece
                        joined.seek(min(size, PART_SIZE + 1) - 1)
                        joined.write(b"\0")
                        joined.seek(0)
                    joined.write(first)
                    first = b""
                joined.write(chunk)
            got += len(chunk)
        if joined is not None:
            joined.truncate(got)
            first, joined = joined.getvalue(), None
        data = first
        self.sha256.update(data)
        self.size += len(data)
        return data

    def close(self):
        if self._buffer is not None:
            self._buffer.close()
        if self._thread is not None:
            self._thread.join(ENCODER_JOIN_TIMEOUT)
        self._handle.close()


class BackupStore:
    """One bucket and prefix of an S3-compatible store."""

    def __init__(self, url, endpoint_url=None, region=None, access_key=None, secret_key=None, session_token=None,
                 ca_bundle=None, validate_certs=True, client=None, compression="zstd", age_recipients=(), age_identity=""):
        self.url = url
        self.compression = compression
        self.recipient_keys = [r.strip() for r in age_recipients or () if r.strip()]
        self.recipients = parse_recipients(self.recipient_keys) if self.recipient_keys else []
        self.identities = parse_identities(age_identity) if age_identity else []
        self.bucket, self.prefix = parse_url(url)
        self.endpoint_url = endpoint_url or ""
        self.client = client or self._client(endpoint_url, region, access_key, secret_key, session_token, ca_bundle, validate_certs)

    def _client(self, endpoint_url, region, access_key, secret_key, session_token, ca_bundle, validate_certs):
        endpoint = urlparse(endpoint_url or "https://s3.amazonaws.com")
        if endpoint.scheme not in ("http", "https") or not endpoint.netloc:
            raise StoreError("endpoint URL %r is not http(s)://host[:port]; give -e backup_store_endpoint_url=https://<host>:<port> "
                             "or AWS_ENDPOINT_URL" % endpoint_url)
        if not access_key or not secret_key:
            raise StoreError("no credentials for %s: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the hcp.etcd S3 "
                             "credential in AWX)" % self.url)
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=10, read=120),
            retries=urllib3.Retry(total=3, backoff_factor=0.5, status_forcelist=(500, 502, 503, 504)),
            cert_reqs="CERT_REQUIRED" if validate_certs else "CERT_NONE",
            ca_certs=ca_bundle or None,
        )
        return minio.Minio(endpoint.netloc, access_key=access_key, secret_key=secret_key, session_token=session_token or None,
                           secure=endpoint.scheme == "https", region=region or None, http_client=http)

    # ---- errors ------------------------------------------------------------------------------

    def explain(self, exc, doing):
        """A StoreError naming the fix for an exception of the client."""
        where = "%s (endpoint %s)" % (self.url, self.endpoint_url or "AWS S3")
        if isinstance(exc, S3Error):
            code = getattr(exc, "code", "")
            if code == "NoSuchBucket":
                return StoreError("%s: bucket %s does not exist; create it (for example `mc mb`) or fix -e backup_store" % (where, self.bucket))
            if code in CREDENTIAL_CODES:
                return StoreError("%s refused the credentials while %s (%s); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
                                  "(or the AWX credential) and the bucket policy" % (where, doing, code))
            return StoreError("%s: %s while %s: %s" % (where, code, doing, getattr(exc, "message", exc)))
        if urllib3 is not None and isinstance(exc, urllib3.exceptions.HTTPError):
            return StoreError("%s cannot be reached while %s: %s; check the endpoint URL, the network and the CA bundle "
                              "(AWS_CA_BUNDLE / backup_store_ca_bundle)" % (where, doing, exc))
        return StoreError("%s: %s while %s" % (where, exc, doing))

    def _call(self, doing, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (S3Error, OSError, ValueError) as exc:
            raise self.explain(exc, doing)
        except Exception as exc:  # urllib3 errors and the client's own
            if urllib3 is not None and isinstance(exc, urllib3.exceptions.HTTPError):
                raise self.explain(exc, doing)
            raise

    def key(self, *parts):
        return join(self.prefix, *parts)

    def object_url(self, key):
        return "s3://%s/%s" % (self.bucket, key)

    # ---- the operations ----------------------------------------------------------------------

    def check(self):
        """Refuse before any backup when the bucket is missing, the credentials are refused or writes are not allowed."""
        if not self._call("checking the bucket", self.client.bucket_exists, self.bucket):
            raise StoreError("%s (endpoint %s): bucket %s does not exist; create it (for example `mc mb`) or fix -e backup_store"
                             % (self.url, self.endpoint_url or "AWS S3", self.bucket))
        probe = self.key(".hcp-etcd-write-probe")
        self._call("writing a probe object", self.client.put_object, self.bucket, probe, _Bytes(b"hcp.etcd"), 8)
        self._call("removing the probe object", self.client.remove_object, self.bucket, probe)
        return {"bucket": self.bucket, "prefix": self.prefix}

    def upload_backup(self, src, path, exclude=()):
        """Upload the complete local backup directory ``src`` to ``<prefix>/<path>/``, encoded, the sidecar last.

        Every file but the sidecar is encoded (zstd, age) while it is uploaded (``EncodedStream``: a multipart
        upload of unknown length, no scratch copy on the controller); the snapshot's plain sha256 (computed while
        it is read) must equal the sidecar's before its object can be completed. The stored sidecar records the
        encoding and every stored object's sha256 and size, those of the bytes sent. On any failure every object
        of this backup already uploaded is removed. Returns the keys, the snapshot's sha256 and URL, and the sizes."""
        sidecar_file = os.path.join(src, SIDECAR)
        with open(sidecar_file) as handle:
            sidecar = json.load(handle)
        if SIDECAR in exclude or SNAPSHOT in exclude:
            raise StoreError("the snapshot and its sidecar are always uploaded; remove them from exclude")
        names = sorted(n for n in os.listdir(src) if os.path.isfile(os.path.join(src, n)) and n not in exclude and n != SIDECAR)
        encoding = encoding_name(self.compression, self.recipients)
        uploaded, files, current = [], {}, None
        try:
            for name in names:
                current = self.key(path, name)
                stored_sha256, stored_size = self._put_encoded(
                    os.path.join(src, name), current, encoding, sidecar.get("sha256") if name == SNAPSHOT else None)
                uploaded.append(current)
                files[name] = {"sha256": stored_sha256, "size": stored_size}
            body = json.dumps(dict(sidecar, store={"encoding": encoding, "recipients": self.recipient_keys, "files": files}),
                              indent=2, sort_keys=True).encode("utf-8")
            current = self.key(path, SIDECAR)
            self._call("uploading %s" % SIDECAR, self.client.put_object, self.bucket, current, _Bytes(body), len(body))
            uploaded.append(current)
        except BaseException:
            # the object whose upload failed too: a multipart upload completed by the server whose answer was lost
            for key in uploaded + ([current] if current and current not in uploaded else []):
                try:
                    self.client.remove_object(self.bucket, key)
                except Exception:  # the failure being reported matters more
                    pass
            raise
        return {"keys": uploaded, "sha256": sidecar.get("sha256"), "url": self.object_url(self.key(path, SNAPSHOT)),
                "encoding": encoding, "size": sidecar.get("size"), "stored_size": files[SNAPSHOT]["size"]}

    def _put_encoded(self, local, key, encoding, plain_sha256=None):
        """Upload ``local`` encoded on the fly to ``key`` (multipart, length unknown); returns the sha256 and size sent."""
        stream = EncodedStream(local, self.compression, self.recipients, plain_sha256=plain_sha256, what="%s (%s)" % (self.object_url(key), encoding))
        try:
            try:
                self._call("uploading %s" % key, self.client.put_object, self.bucket, key, stream, -1,
                           part_size=PART_SIZE, num_parallel_uploads=1)
            except Exception:
                # the encoder's failure (or the snapshot's mismatch) is the cause, whatever the client made of it
                if stream.error is not None:
                    raise stream.error
                raise
            if stream.error is not None:
                raise stream.error
            if not stream.finished:
                raise StoreError("%s: the client stored the object after %d bytes, before the end of the encoded file; "
                                 "back up again" % (self.object_url(key), stream.size))
        finally:
            stream.close()
        return stream.sha256.hexdigest(), stream.size

    def download_snapshot(self, url, dest_dir):
        """Download a snapshot (``s3://bucket/key``) and its sidecar into ``dest_dir`` (0700), files 0600.

        The stored bytes are decrypted and decompressed as they arrive (no scratch copy, flat memory); their sha256
        must equal the one the stored sidecar records and the plain snapshot's sha256 the sidecar's before it is
        renamed into place. A local copy that already matches is kept (no download). The local sidecar is the backup's
        own (without the store's section). Returns the local path and whether it was downloaded."""
        bucket, key = parse_url(url)
        if bucket != self.bucket:
            raise StoreError("snapshot %s is in bucket %s, not in the store's bucket %s; give -e backup_store=s3://%s"
                             % (url, bucket, self.bucket, bucket))
        if not key.endswith("/" + SNAPSHOT) and key != SNAPSHOT:
            raise StoreError("snapshot %s does not name an %s object; give the URL of a backup's %s (playbooks/list.yml lists them)"
                             % (url, SNAPSHOT, SNAPSHOT))
        sidecar = json.loads(self._read(key + ".json", "reading the sidecar of %s" % url, missing=(
            "%s has no sidecar %s.json: it is not a complete backup (an upload that did not finish); pick another "
            "backup (playbooks/list.yml lists the complete ones)" % (url, SNAPSHOT))).decode("utf-8"))
        store = sidecar.pop("store", None) or {}
        encoding = store.get("encoding", "none")
        stored_meta = (store.get("files") or {}).get(SNAPSHOT) or {}
        if "age" in encoding and not self.identities:
            raise StoreError("%s is encrypted to age recipient(s) %s; give the identity (AGE-SECRET-KEY-...) of one of them with "
                             "-e backup_store_age_identity_file=<file>, HCP_ETCD_AGE_IDENTITY_FILE or HCP_ETCD_AGE_IDENTITY (in AWX: a "
                             "credential of type \"age identity (hcp.etcd)\")"
                             % (url, ", ".join(store.get("recipients") or ["?"])))
        os.makedirs(dest_dir, mode=0o700, exist_ok=True)
        local = os.path.join(dest_dir, SNAPSHOT)
        result = {"path": local, "downloaded": False, "sha256": sidecar.get("sha256"), "size": sidecar.get("size"),
                  "encoding": encoding, "stored_size": stored_meta.get("size")}
        if not (os.path.isfile(local) and os.path.getsize(local) == sidecar.get("size") and etcd_cli.file_sha256(local)[0] == sidecar.get("sha256")):
            self._fetch(url, key, local, encoding, stored_meta.get("sha256"), sidecar.get("sha256"), sidecar.get("size"), dest_dir)
            result["downloaded"] = True
        snapshot_file.write_json_0600(local + ".json", sidecar)
        return result

    def _fetch(self, url, key, local, encoding, stored_sha256, plain_sha256, plain_size, dest_dir):
        """Stream the object through the decoder into ``<local>.part``, hashing the stored bytes as they come;
        renamed into place only when the stored and the plain sha256 both equal the sidecar's."""
        part = local + ".part"
        try:
            response = self._call("downloading %s" % url, self.client.get_object, self.bucket, key)
            try:
                stored = HashingReader(response)
                got = decode_stream(stored, part, encoding, self.identities, max_size=plain_size)
                # what the decoder left unread (trailing bytes of a damaged object) still counts in the stored hash
                for _chunk in iter(lambda: stored.read(CHUNK), b""):
                    pass
            finally:
                response.close()
                response.release_conn()
            expected = stored_sha256 or (plain_sha256 if encoding == "none" else None)
            if stored.sha256.hexdigest() != expected:
                raise StoreError("%s downloaded with sha256 %s, its sidecar records %s: the object is damaged or was replaced; "
                                 "restore another backup" % (url, stored.sha256.hexdigest(), stored_sha256 or plain_sha256))
            if got != plain_sha256:
                raise StoreError("%s decoded (%s) to sha256 %s, its sidecar says %s: the backup is damaged; restore another backup"
                                 % (url, encoding, got, plain_sha256))
            os.rename(part, local)
        except StoreError:
            raise
        except (OSError, IOError) as exc:
            # age's decoder reports a damaged chunk as an I/O error without an errno; the disk's errors have one
            if exc.errno is None:
                raise StoreError("%s does not decode (%s): the object is damaged or was replaced; restore another backup" % (url, exc))
            raise StoreError("cannot write %s: %s; free space in %s or give another restore_work_dir" % (local, exc, dest_dir))
        except Exception as exc:
            if zstandard is not None and isinstance(exc, zstandard.ZstdError):
                raise StoreError("%s does not decompress (%s): the object is damaged or was replaced; restore another backup"
                                 % (url, exc))
            raise
        finally:
            if os.path.exists(part):
                os.unlink(part)

    def _read(self, key, doing, missing):
        try:
            response = self.client.get_object(self.bucket, key)
        except S3Error as exc:
            if getattr(exc, "code", "") == "NoSuchKey":
                raise StoreError(missing)
            raise self.explain(exc, doing)
        except Exception as exc:
            raise self.explain(exc, doing)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def record_drill(self, url, record):
        """Store a restore drill's verdict beside the backup's snapshot (``drill.json``)."""
        bucket, key = parse_url(url)
        if bucket != self.bucket or not key.endswith("/" + SNAPSHOT):
            raise StoreError("%s is not a backup's %s in %s" % (url, SNAPSHOT, self.url))
        body = json.dumps(record, indent=2, sort_keys=True).encode("utf-8")
        drill_key = key[:-len(SNAPSHOT)] + DRILL
        self._call("recording the drill", self.client.put_object, self.bucket, drill_key, _Bytes(body), len(body))
        return {"url": self.object_url(drill_key)}

    def backups(self, cluster_path):
        """The backups under ``<prefix>/<cluster_path>/``: complete (sidecar present, newest first) and incomplete names."""
        base = self.key(cluster_path) + "/"
        objects = {}
        for obj in self._call("listing %s" % base, lambda: list(self.client.list_objects(self.bucket, prefix=base, recursive=True))):
            rest = obj.object_name[len(base):]
            if "/" in rest:
                name, leaf = rest.split("/", 1)
                objects.setdefault(name, {})[leaf] = obj.size
        complete, incomplete = snapshot_file.sort_backups(objects)
        return complete, incomplete, objects

    def list_backups(self, cluster_path):
        """Every complete backup of a cluster, newest first, with its sidecar's facts."""
        complete, incomplete, objects = self.backups(cluster_path)
        result = []
        for name in complete:
            key = self.key(cluster_path, name, SIDECAR)
            sidecar = json.loads(self._read(key, "reading %s" % key, missing="%s vanished while listed" % key).decode("utf-8"))
            result.append({
                "name": name,
                "url": self.object_url(self.key(cluster_path, name, SNAPSHOT)),
                "size": sidecar.get("size"),
                "sha256": sidecar.get("sha256"),
                "revision": sidecar.get("revision"),
                "etcd_version": sidecar.get("etcd_version"),
                "encoding": (sidecar.get("store") or {}).get("encoding", "none"),
                "stored_size": objects[name][SNAPSHOT],
                "drill": self._drill_verdict(cluster_path, name) if DRILL in objects[name] else "never drilled",
                "taken_at": sidecar.get("finished_at") or name,
                "cluster_name": sidecar.get("cluster_name"),
                "hosted_cluster_namespace": sidecar.get("hosted_cluster_namespace"),
            })
        return result, incomplete

    def _drill_verdict(self, cluster_path, name):
        key = self.key(cluster_path, name, DRILL)
        record = json.loads(self._read(key, "reading %s" % key, missing="%s vanished while listed" % key).decode("utf-8"))
        return "%s at %s" % (record.get("verdict", "?"), record.get("drilled_at", "?"))

    def prune(self, cluster_path, keep, current=None):
        """Remove the complete backups older than the newest ``keep``; never ``current``, never an incomplete one."""
        complete, incomplete, objects = self.backups(cluster_path)
        doomed = snapshot_file.expired_backups(complete, keep, current)
        for name in doomed:
            # the sidecar first: a removal that stops half-way leaves an incomplete backup, never a damaged "complete" one
            keys = [self.key(cluster_path, name, leaf) for leaf in sorted(objects[name], key=lambda leaf: leaf != SIDECAR)]
            self._call("removing %s" % name, self.client.remove_object, self.bucket, keys[0])
            errors = self._call("removing %s" % name, lambda rest=keys[1:]: list(self.client.remove_objects(self.bucket, [DeleteObject(k) for k in rest])))
            if errors:
                raise StoreError("removing backup %s from %s failed: %s" % (name, self.url, "; ".join(str(e) for e in errors)))
        return {"removed": doomed, "kept": [n for n in complete if n not in doomed], "incomplete": incomplete}


class _Bytes:
    def __init__(self, data):
        self._data, self._pos = data, 0

    def read(self, size=-1):
        end = len(self._data) if size is None or size < 0 else self._pos + size
        chunk, self._pos = self._data[self._pos:end], min(end, len(self._data))
        return chunk
