# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure etcd logic for hcp.etcd: no Kubernetes API, no I/O besides local files.

Everything that decides *what* to run (argv of etcdctl / etcdutl for etcd 3.4, 3.5 and 3.6),
how to read what came back (``snapshot status -w json``, ``version``), and the small file
formats of the collection (the JSON sidecar of a snapshot, the restore marker) lives here,
so it can be unit-tested without a cluster.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import re

# ---- constants ---------------------------------------------------------------------------

DEFAULT_ENDPOINT = "https://localhost:2379"
CA_CANDIDATES = (
    "/etc/etcd/tls/etcd-ca/ca.crt",  # OpenShift 4.12+
    "/etc/etcd/tls/client/etcd-client-ca.crt",  # OpenShift 4.11 and older
)
CERT_CANDIDATES = ("/etc/etcd/tls/client/etcd-client.crt",)
KEY_CANDIDATES = ("/etc/etcd/tls/client/etcd-client.key",)

DEFAULT_TOKEN = "etcd-cluster"
DEFAULT_BUMP_REVISION = 1000000000
PEER_PORT = 2380

TRAILER_SIZE = 32  # sha256 appended by `snapshot save`
TRAILER_ALIGN = 512
HASH_CHUNK = 4 * 1024 * 1024

SNAPSHOT_METHODS = ("save", "copy_db")
SIDECAR_VERSION = 2  # 2: binds the snapshot to its HostedCluster (uid, encryption key fingerprint)
SIDECAR_KEYS = (
    "cluster_name",
    "hosted_cluster_namespace",
    "hosted_cluster_uid",
    "encryption_key_fingerprint",
    "namespace",
    "member",
    "method",
    "sha256",
    "size",
    "revision",
    "total_keys",
    "hash",
    "kv_count",
    "kv_hash",
    "etcd_version",
    "needs_skip_hash_check",
    "started_at",
    "finished_at",
)
MARKER_NAME = ".hcp-etcd-restore.json"

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_VERSION_RE = re.compile(
    r"(etcdctl|etcdutl|etcd)?\s*version:?\s*v?(\d+)\.(\d+)\.(\d+)", re.IGNORECASE
)
_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class EtcdCliError(Exception):
    """A decision could not be made; the message says what to fix."""


# ---- names -------------------------------------------------------------------------------


def control_plane_namespace(hosted_cluster_namespace, cluster_name):
    """HyperShift's control-plane namespace: ``<hc-namespace>-<name>``, dots become dashes."""
    if not hosted_cluster_namespace or not cluster_name:
        raise EtcdCliError(
            "both hosted_cluster_namespace and cluster_name are needed to name the control-plane namespace"
        )
    name = "%s-%s" % (hosted_cluster_namespace, cluster_name.replace(".", "-"))
    if len(name) > 63 or not _DNS_LABEL_RE.match(name):
        raise EtcdCliError(
            "'%s' is not a valid namespace name (lowercase letters, digits and '-', at most 63 chars)"
            % name
        )
    return name


# ---- versions and tools ------------------------------------------------------------------


def parse_version(text):
    """Return the first ``X.Y.Z`` version found in ``etcdctl version`` style output, or None."""
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    match = _VERSION_RE.search(text)
    if not match:
        return None
    return tuple(int(part) for part in match.group(2, 3, 4))


def version_string(version):
    return ".".join(str(part) for part in version) if version else None


def _probe_version(result):
    """``result`` is ``(rc, stdout, stderr)`` of ``<tool> version``, or None when not run."""
    if result is None:
        return None
    rc, out, err = result
    if rc != 0:
        return None
    if isinstance(out, bytes):
        out = out.decode("utf-8", "replace")
    if isinstance(err, bytes):
        err = err.decode("utf-8", "replace")
    return parse_version(out) or parse_version(err)


def detect_tools(etcdutl_result, etcdctl_result):
    """Summarise which etcd tools a container has.

    Each argument is the ``(rc, stdout, stderr)`` of ``etcdutl version`` / ``etcdctl version``
    (rc 127 when the binary is missing). Returns a dict with ``etcdutl`` and ``etcdctl`` version
    tuples (or None), ``has_etcdutl``, ``has_etcdctl``, ``etcd_version`` (string),
    ``restore_tool`` / ``status_tool`` (None when nothing can restore) and
    ``supports_bump_revision`` (a version based hint only: the modules confirm it from ``--help``).
    """
    etcdutl = _probe_version(etcdutl_result)
    etcdctl = _probe_version(etcdctl_result)
    info = {
        "etcdutl": etcdutl,
        "etcdctl": etcdctl,
        "has_etcdutl": etcdutl is not None,
        "has_etcdctl": etcdctl is not None,
        "etcd_version": version_string(etcdctl or etcdutl),
        "restore_tool": None,
        "status_tool": None,
        "supports_bump_revision": False,
    }
    if etcdutl is not None:
        info["restore_tool"] = info["status_tool"] = "etcdutl"
        info["supports_bump_revision"] = etcdutl >= (3, 5, 10)
    elif etcdctl is not None and etcdctl < (3, 6, 0):
        info["restore_tool"] = info["status_tool"] = "etcdctl"
        info["supports_bump_revision"] = (3, 4, 27) <= etcdctl < (3, 5, 0) or etcdctl >= (
            3,
            5,
            10,
        )
    return info


def require_tool(tools, purpose="restore"):
    """Return the tool for ``snapshot status`` / ``snapshot restore`` or raise a clear error."""
    tool = tools.get("restore_tool")
    if tool:
        return tool
    etcdctl = tools.get("etcdctl")
    if etcdctl is not None and etcdctl >= (3, 6, 0):
        raise EtcdCliError(
            "etcdutl not found in container and etcdctl %s has no 'snapshot %s' (removed in etcd 3.6); "
            "use an image that ships etcdutl (every etcd 3.5+ image does)"
            % (version_string(etcdctl), purpose)
        )
    if etcdctl is None:
        raise EtcdCliError(
            "neither etcdutl nor etcdctl found in container; run this against a container of the etcd image"
        )
    raise EtcdCliError("no tool can run 'snapshot %s'" % purpose)  # pragma: no cover


def help_supports_bump_revision(help_text):
    """True when ``snapshot restore --help`` lists both --bump-revision and --mark-compacted."""
    if isinstance(help_text, bytes):
        help_text = help_text.decode("utf-8", "replace")
    return bool(help_text) and "--bump-revision" in help_text and "--mark-compacted" in help_text


# ---- argv builders -----------------------------------------------------------------------


def _tool_prefix(tool):
    if tool == "etcdutl":
        return ["etcdutl"]
    if tool == "etcdctl":
        # etcd 3.4 defaults to API v3 already; being explicit costs nothing and helps 3.3-era images.
        return ["env", "ETCDCTL_API=3", "etcdctl"]
    raise EtcdCliError("unknown etcd tool %r (expected etcdutl or etcdctl)" % (tool,))


def tls_args(endpoint, cacert, cert, key):
    if not (endpoint and cacert and cert and key):
        raise EtcdCliError("endpoint, cacert, cert and key are all needed to talk to etcd over TLS")
    return [
        "--cacert=%s" % cacert,
        "--cert=%s" % cert,
        "--key=%s" % key,
        "--endpoints=%s" % endpoint,
    ]


def snapshot_save_argv(path, endpoint, cacert, cert, key):
    """``etcdctl snapshot save`` over TLS (etcdctl in every version; etcdutl cannot save)."""
    return ["etcdctl"] + tls_args(endpoint, cacert, cert, key) + ["snapshot", "save", path]


def snapshot_status_argv(tool, path):
    return _tool_prefix(tool) + ["snapshot", "status", path, "-w", "json"]


def snapshot_restore_help_argv(tool):
    return _tool_prefix(tool) + ["snapshot", "restore", "--help"]


def snapshot_restore_argv(
    tool,
    snapshot,
    name,
    initial_cluster,
    peer_urls,
    data_dir,
    token=DEFAULT_TOKEN,
    skip_hash_check=False,
    bump_revision=None,
):
    """``snapshot restore`` for one member; ``bump_revision`` (int > 0) adds --mark-compacted."""
    for label, value in (
        ("snapshot", snapshot),
        ("name", name),
        ("initial_cluster", initial_cluster),
        ("peer_urls", peer_urls),
        ("data_dir", data_dir),
        ("token", token),
    ):
        if not value:
            raise EtcdCliError("snapshot restore needs %s" % label)
    argv = _tool_prefix(tool) + [
        "snapshot",
        "restore",
        snapshot,
        "--name=%s" % name,
        "--initial-cluster=%s" % initial_cluster,
        "--initial-cluster-token=%s" % token,
        "--initial-advertise-peer-urls=%s" % peer_urls,
        "--data-dir=%s" % data_dir,
    ]
    if skip_hash_check:
        argv.append("--skip-hash-check")
    if bump_revision:
        argv.extend(["--bump-revision=%d" % int(bump_revision), "--mark-compacted"])
    return argv


# The two reads below scan the member's whole key-value store: etcdctl's default --command-timeout (5 s) is too short
# for a database of a few GiB on a busy machine (a 2.4 GiB hashkv failed with "context deadline exceeded" and the
# pre-flight of a backup retried for minutes); the exec around them has its own timeout.
FULL_SCAN_TIMEOUT = "--command-timeout=300s"


def keys_at_args(revision):
    """``etcdctl`` arguments whose JSON ``count`` is the number of keys at ``revision`` (whatever the limit, 3.4+)."""
    return ["get", "", "--prefix", "--keys-only", "--limit=1", "--consistency=s", "--rev=%d" % int(revision), "-w", "json",
            FULL_SCAN_TIMEOUT]


def hashkv_args(revision):
    """``etcdctl`` arguments of the member's hash of its key-value store at ``revision`` (JSON)."""
    return ["endpoint", "hashkv", "--rev=%d" % int(revision), "-w", "json", FULL_SCAN_TIMEOUT]


def parse_json_output(out, what):
    """The first JSON value in an etcdctl output (etcdctl may print warnings before it)."""
    text = out.decode("utf-8", "replace") if isinstance(out, bytes) else out
    start = min([i for i in (text.find("["), text.find("{")) if i >= 0] or [-1])
    if start < 0:
        raise EtcdCliError("no JSON in the output of %s: %s" % (what, text.strip()[:300]))
    return json.JSONDecoder().raw_decode(text[start:])[0]


def parse_keys_count(out):
    return int(parse_json_output(out, "etcdctl get --keys-only").get("count", 0))


def parse_hashkv(out):
    return int(parse_json_output(out, "etcdctl endpoint hashkv")[0]["HashKV"]["hash"])


def tool_version_argv(tool):
    return [tool, "version"]


# ---- snapshot status ---------------------------------------------------------------------


def parse_snapshot_status(stdout, stderr=""):
    """Parse ``snapshot status -w json`` (etcdctl 3.4/3.5, etcdutl 3.5/3.6).

    Tolerates the 3.5 etcdctl deprecation warning (normally on stderr, accepted on stdout too)
    and returns ``hash``, ``revision``, ``total_keys``, ``total_size`` and ``version``
    (the storage version, 3.6 only, else None).
    """
    if isinstance(stdout, bytes):
        stdout = stdout.decode("utf-8", "replace")
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    data = None
    decoder = json.JSONDecoder()
    for source in (stdout or "", stderr or ""):
        idx = source.find("{")
        while idx != -1 and data is None:
            try:
                candidate, _end = decoder.raw_decode(source[idx:])
            except ValueError:
                candidate = None
            if isinstance(candidate, dict) and "revision" in candidate:
                data = candidate
            idx = source.find("{", idx + 1)
        if data is not None:
            break
    if data is None:
        raise EtcdCliError(
            "could not read 'snapshot status -w json' output: %s"
            % ((stdout or "").strip() or (stderr or "").strip() or "<empty>")[:500]
        )
    try:
        return {
            "hash": int(data.get("hash", 0)),
            "revision": int(data["revision"]),
            "total_keys": int(data.get("totalKey", data.get("totalKeys", 0))),
            "total_size": int(data.get("totalSize", 0)),
            "version": data.get("version") or None,
        }
    except (TypeError, ValueError, KeyError) as exc:
        raise EtcdCliError("unexpected 'snapshot status' fields %r: %s" % (data, exc))


# ---- snapshot files ----------------------------------------------------------------------


def file_sha256(path, chunk_size=HASH_CHUNK):
    """``(sha256, size)`` of the file ``path``."""
    sha256, facts = snapshot_digest(path, chunk_size)
    return sha256, facts["size"]


def snapshot_trailer(path, chunk_size=HASH_CHUNK):
    """Inspect the sha256 trailer that ``snapshot save`` appends.

    Returns ``{"size": n, "size_ok": bool, "hash_ok": bool, "has_trailer": bool}``:
    ``size_ok`` when ``size % 512 == 32``, ``hash_ok`` when the last 32 bytes are the sha256 of
    the rest. Only both together mean a verifiable snapshot.
    """
    return snapshot_digest(path, chunk_size)[1]


def snapshot_digest(path, chunk_size=HASH_CHUNK):
    """``(sha256, trailer)`` of ``path`` in one read: its sha256, and the ``snapshot_trailer``
    facts. The hash of all but the last 32 bytes is the file's hash before its last 32 bytes are
    added, so the file is read and hashed once, not once per question."""
    digest = hashlib.sha256()  # of every byte read so far but the last TRAILER_SIZE (kept in tail)
    tail = b""
    size = 0
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk_size)
            if not block:
                break
            size += len(block)
            if len(block) >= TRAILER_SIZE:
                digest.update(tail)
                digest.update(memoryview(block)[:-TRAILER_SIZE])
                tail = block[-TRAILER_SIZE:]
            else:
                joined = tail + block
                digest.update(joined[:-TRAILER_SIZE])
                tail = joined[-TRAILER_SIZE:]
    whole = digest.copy()
    whole.update(tail)
    size_ok = size > TRAILER_SIZE and size % TRAILER_ALIGN == TRAILER_SIZE
    hash_ok = size > TRAILER_SIZE and tail == digest.digest()
    return whole.hexdigest(), {"size": size, "size_ok": size_ok, "hash_ok": hash_ok, "has_trailer": size_ok and hash_ok}


def explicit_skip_hash_check(mode):
    """``True`` / ``False`` when ``mode`` names the choice (yes / no), ``None`` for ``auto``."""
    if mode is True or mode in ("yes", "true", "True", "on"):
        return True
    if mode is False or mode in ("no", "false", "False", "off"):
        return False
    return None


def decide_skip_hash_check(mode, method=None, has_trailer=None):
    """Return ``(skip, reason)`` for ``--skip-hash-check``.

    ``mode`` is ``auto`` / ``yes`` / ``no`` (booleans accepted). ``auto`` skips only for a raw
    ``copy_db`` file or a file of unknown method without a valid trailer; a ``snapshot save`` file
    is verified, and one whose trailer is damaged is refused.
    """
    explicit = explicit_skip_hash_check(mode)
    if explicit is True:
        return True, "requested (skip_hash_check: yes)"
    if explicit is False:
        if has_trailer is False:
            raise EtcdCliError(
                "skip_hash_check is 'no' but the snapshot has no sha256 trailer (a raw member/snap/db copy?); "
                "restore would fail: use skip_hash_check: auto or yes"
            )
        return False, "requested (skip_hash_check: no)"
    if mode not in (None, "auto"):
        raise EtcdCliError("skip_hash_check must be auto, yes or no, not %r" % (mode,))
    if method == "copy_db":
        return True, "the snapshot is a raw member/snap/db copy (method copy_db)"
    if has_trailer is False and method == "save":
        raise EtcdCliError(
            "the snapshot was made by 'snapshot save' but its sha256 trailer is missing or wrong: the file is "
            "damaged, restoring it with --skip-hash-check would hide that; take or copy the snapshot again"
        )
    if has_trailer is False:
        return True, "the file has no valid sha256 trailer"
    if has_trailer is None and method is None:
        raise EtcdCliError("cannot decide skip_hash_check: neither the method nor the file trailer is known")
    return False, "the snapshot carries a sha256 trailer that restore verifies"


# ---- topology ----------------------------------------------------------------------------


def peer_url(pod, service_name, namespace, port=PEER_PORT):
    return "https://%s.%s.%s.svc:%d" % (pod, service_name, namespace, port)


def initial_cluster_string(members):
    return ",".join("%s=%s" % (m["name"], m["peer_url"]) for m in members)


def parse_initial_cluster(text):
    """``a=https://..,b=https://..`` -> ordered list of (name, url); raises on malformed input."""
    result = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, url = item.partition("=")
        if not sep or not name or not url:
            raise EtcdCliError("malformed initial_cluster entry %r (expected name=https://host:2380)" % item)
        result.append((name, url))
    if not result:
        raise EtcdCliError("initial_cluster is empty")
    return result


def peer_urls_for(initial_cluster, member):
    urls = [url for name, url in parse_initial_cluster(initial_cluster) if name == member]
    if not urls:
        raise EtcdCliError(
            "member %s is not in initial_cluster %s; pass initial_advertise_peer_urls or fix member"
            % (member, initial_cluster)
        )
    return ",".join(urls)


def _get(obj, *path):
    for key in path:
        if obj is None:
            return None
        obj = obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)
    return obj


def topology_from_statefulset(sts, namespace=None, container="etcd"):
    """Members, peer URLs and the initial-cluster string of an etcd StatefulSet (a dict)."""
    if not isinstance(sts, dict):
        raise EtcdCliError("expected the StatefulSet as a dict (k8s_info resources[0])")
    name = _get(sts, "metadata", "name") or "etcd"
    namespace = namespace or _get(sts, "metadata", "namespace")
    service = _get(sts, "spec", "serviceName")
    if not namespace:
        raise EtcdCliError("the StatefulSet has no namespace; pass namespace")
    if not service:
        raise EtcdCliError("StatefulSet %s/%s has no spec.serviceName" % (namespace, name))
    replicas = _get(sts, "spec", "replicas")
    replicas = 1 if replicas is None else int(replicas)
    containers = _get(sts, "spec", "template", "spec", "containers") or []
    image = None
    for item in containers:
        if item.get("name") == container:
            image = item.get("image")
            break
    if image is None and containers:
        image = containers[0].get("image")
    members = []
    for index in range(replicas):
        pod = "%s-%d" % (name, index)
        members.append(
            {
                "name": pod,
                "index": index,
                "pvc": "data-%s" % pod,
                "peer_url": peer_url(pod, service, namespace),
            }
        )
    return {
        "statefulset": name,
        "namespace": namespace,
        "service_name": service,
        "replicas": replicas,
        "members": members,
        "member_names": [m["name"] for m in members],
        "initial_cluster": initial_cluster_string(members),
        "image": image,
    }


# ---- sidecar -----------------------------------------------------------------------------


def sidecar_path(dest):
    return dest + ".json"


def build_sidecar(**facts):
    unknown = set(facts) - set(SIDECAR_KEYS)
    if unknown:
        raise EtcdCliError("unknown sidecar keys: %s" % ", ".join(sorted(unknown)))
    data = dict((key, facts.get(key)) for key in SIDECAR_KEYS)
    data["format_version"] = SIDECAR_VERSION
    errors = validate_sidecar(data)
    if errors:
        raise EtcdCliError("invalid sidecar: %s" % "; ".join(errors))
    return data


def validate_sidecar(data):
    """Return a list of problems (empty when the sidecar is usable)."""
    if not isinstance(data, dict):
        return ["sidecar is not a JSON object"]
    errors = []
    for key in ("sha256", "size", "method", "needs_skip_hash_check"):
        if key not in data or data[key] is None:
            errors.append("missing %s" % key)
    sha = data.get("sha256")
    if sha is not None and not (isinstance(sha, str) and _SHA256_RE.match(sha)):
        errors.append("sha256 is not 64 lowercase hex digits")
    size = data.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        errors.append("size is not a non-negative integer")
    method = data.get("method")
    if method is not None and method not in SNAPSHOT_METHODS:
        errors.append("method must be one of %s" % ", ".join(SNAPSHOT_METHODS))
    skip = data.get("needs_skip_hash_check")
    if skip is not None and not isinstance(skip, bool):
        errors.append("needs_skip_hash_check is not a boolean")
    if method == "copy_db" and skip is False:
        errors.append("a copy_db snapshot always needs skip_hash_check")
    for key in ("revision", "total_keys", "hash", "kv_count", "kv_hash"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            errors.append("%s is not an integer" % key)
    return errors


def load_sidecar(path):
    with open(path, "r") as handle:
        try:
            data = json.load(handle)
        except ValueError as exc:
            raise EtcdCliError("sidecar %s is not JSON: %s" % (path, exc))
    errors = validate_sidecar(data)
    if errors:
        raise EtcdCliError("sidecar %s is invalid: %s" % (path, "; ".join(errors)))
    return data


# ---- restore marker ----------------------------------------------------------------------


def fingerprint_command(data_dir):
    """Shell snippet listing ``name size mtime`` of every file under member/wal and member/snap.

    Names are relative to ``data_dir`` so that a directory keeps its fingerprint when it is moved
    (a restore staged in one directory and then swapped into the data directory)."""
    return (
        'cd "$0" 2>/dev/null || exit 0; for f in member/wal/* member/snap/*; do '
        '[ -f "$f" ] && stat -c "%n %s %Y" "$f"; done; true',
        data_dir,
    )


def fingerprint_from_listing(listing):
    """A stable digest of a ``name size mtime`` listing (order does not matter)."""
    if isinstance(listing, bytes):
        listing = listing.decode("utf-8", "replace")
    lines = sorted(line.strip() for line in (listing or "").splitlines() if line.strip())
    if not lines:
        return None
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def build_marker(snapshot_sha256, member, initial_cluster, token, peer_urls, fingerprint, **extra):
    marker = {
        "format_version": 1,
        "snapshot_sha256": snapshot_sha256,
        "member": member,
        "initial_cluster": initial_cluster,
        "initial_cluster_token": token,
        "initial_advertise_peer_urls": peer_urls,
        "fingerprint": fingerprint,
    }
    marker.update(extra)
    return marker


def parse_marker(text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        data = json.loads(text or "")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def marker_matches(marker, snapshot_sha256, member, initial_cluster, token, peer_urls, fingerprint):
    """True when the data dir is exactly what this restore would produce and etcd never ran on it."""
    if not marker or not fingerprint:
        return False
    expected = {
        "snapshot_sha256": snapshot_sha256,
        "member": member,
        "initial_cluster": initial_cluster,
        "initial_cluster_token": token,
        "initial_advertise_peer_urls": peer_urls,
        "fingerprint": fingerprint,
    }
    return all(marker.get(key) == value for key, value in expected.items())


# ---- space -------------------------------------------------------------------------------


def parse_df_available(output):
    """Available bytes from ``df -Pk <path>`` output."""
    if isinstance(output, bytes):
        output = output.decode("utf-8", "replace")
    lines = [line for line in (output or "").splitlines() if line.strip()]
    if len(lines) < 2:
        raise EtcdCliError("unexpected df output: %r" % output)
    fields = lines[-1].split()
    try:
        return int(fields[3]) * 1024
    except (IndexError, ValueError):
        raise EtcdCliError("unexpected df output: %r" % output)


def restore_space_needed(snapshot_size, upload_needed=True):
    """Bytes a restore needs free: the uploaded copy, the restored db, a 64 MiB WAL, 10% slack."""
    need = snapshot_size + 64 * 1024 * 1024
    if upload_needed:
        need += snapshot_size
    return int(need * 1.1)
