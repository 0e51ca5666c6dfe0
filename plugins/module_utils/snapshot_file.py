# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A snapshot file on the controller and its JSON sidecar: the one place that checks them.

``inspect`` says whether a file may be restored (exists, size and sha256 equal its sidecar, a
``snapshot save`` file keeps its sha256 trailer); ``binding`` and ``binding_problems`` say whether
it is a backup of the control plane being restored (HostedCluster UID, namespace and name, etcd
version, fingerprint of the etcd encryption key). ``etcd_snapshot``, ``etcd_snapshot_info`` and
``etcd_restore_member`` use these; the sidecar's format itself is in ``etcd_cli``.
No Kubernetes API here: callers pass the objects they read.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import hashlib
import json
import os
import re
import tempfile

from ansible_collections.hcp.etcd.plugins.module_utils import etcd_cli

# A HostedCluster without spec.secretEncryption.aescbc: recorded as such, so that a sidecar that
# says nothing about the key (older format, edited) stays distinguishable from "no key".
NO_ENCRYPTION_KEY = "none"
BINDING_KEYS = ("hosted_cluster_uid", "hosted_cluster_namespace", "cluster_name", "etcd_version",
                "encryption_key_fingerprint")
FOREIGN_OVERRIDE = "-e allow_foreign_snapshot=true"
# `snapshot save` writes a full copy of the db beside it on the member's volume: keep this much
# more free than the db's size, so that the member never runs out of space while it serves.
SAVE_SPACE_MARGIN = 64 * 1024 * 1024
# A backup: a directory (or store prefix) named by its UTC time that holds the snapshot and its sidecar.
SNAPSHOT = "etcd-snapshot.db"
SIDECAR = SNAPSHOT + ".json"
BACKUP_NAME = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")


class SnapshotFileError(etcd_cli.EtcdCliError):
    """The file must not be used; the message names the fix."""


# ---- the file and its sidecar ------------------------------------------------------------


def inspect(path, sidecar_file=None, allow_missing_sidecar=False, method=None):
    """Facts of a snapshot file: sha256, size, trailer, sidecar (or None), method.

    Raises SnapshotFileError when the file is missing, its sidecar is missing (unless allowed) or
    does not describe it, or a ``snapshot save`` file has lost its sha256 trailer. ``sidecar_file``
    defaults to ``<path>.json``; ``method`` overrides the sidecar's when given."""
    if not os.path.isfile(path):
        raise SnapshotFileError(
            "snapshot %s not found on the controller; give -e snapshot=<path of an etcd-snapshot.db made by "
            "hcp.etcd.backup> (ls <backup_dir>/<namespace>/<cluster>/ lists them)" % path
        )
    explicit = sidecar_file is not None
    sidecar_file = sidecar_file or etcd_cli.sidecar_path(path)
    sidecar = None
    if os.path.isfile(sidecar_file):
        sidecar = etcd_cli.load_sidecar(sidecar_file)
    elif explicit or not allow_missing_sidecar:
        raise SnapshotFileError(
            "snapshot %s has no sidecar %s, so its checksum cannot be compared; restore the sidecar next to it, "
            "or pass -e snapshot_allow_missing_sidecar=true to accept the file as it is" % (path, sidecar_file)
        )
    sha256, trailer = etcd_cli.snapshot_digest(path)  # one read of the file for both
    size = trailer["size"]
    if sidecar and size != sidecar["size"]:
        raise SnapshotFileError(
            "snapshot %s has %d bytes but its sidecar records %d: the file is truncated or not the one the "
            "sidecar describes; copy it again from the backup" % (path, size, sidecar["size"])
        )
    if sidecar and sha256 != sidecar["sha256"]:
        raise SnapshotFileError(
            "snapshot %s has sha256 %s but its sidecar records %s: the file was altered or damaged; copy it "
            "again from the backup" % (path, sha256, sidecar["sha256"])
        )
    method = method or (sidecar or {}).get("method") or ("save" if trailer["has_trailer"] else "copy_db")
    require_trailer(path, method, trailer)
    return {"path": path, "sha256": sha256, "size": size, "sidecar": sidecar, "method": method,
            "trailer": trailer, "has_trailer": trailer["has_trailer"]}


def require_trailer(path, method, trailer=None):
    """A ``snapshot save`` file whose sha256 trailer is missing or wrong is damaged: refuse it."""
    trailer = trailer or etcd_cli.snapshot_trailer(path)
    if method == "save" and not trailer["has_trailer"]:
        raise SnapshotFileError(
            "snapshot %s was made by 'snapshot save' but its sha256 trailer is missing or wrong "
            "(size %d, %s): the file is damaged; take the backup again, or copy it again from the backup"
            % (path, trailer["size"], "size is not 512*n+32" if not trailer["size_ok"] else "trailer is not the "
               "sha256 of the rest")
        )
    return trailer


def unchanged_sidecar(path):
    """The sidecar of ``path`` when the file on disk still matches it (size and sha256), else None."""
    try:
        facts = inspect(path)
    except (etcd_cli.EtcdCliError, IOError, OSError):
        return None
    return facts["sidecar"]


def write_json_0600(path, data):
    """Write ``data`` as JSON to ``path`` atomically (temporary file, fsync, rename), mode 0600."""
    write_text_0600(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_text_0600(path, text):
    """Write ``text`` to ``path`` atomically (temporary file, fsync, rename), mode 0600."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
        tmp = None
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


# ---- which backups count, and which retention removes: the same rule here and in the store --------


def sort_backups(leaves_by_name):
    """``(complete, incomplete)`` from ``{backup name: names of the files it holds}``: the complete backups (named
    by their UTC time, holding the snapshot and its sidecar) newest first, the other names sorted. A failed or
    interrupted backup is never complete, so it never counts toward retention and is never removed by it."""
    complete = sorted((name for name, leaves in leaves_by_name.items()
                       if BACKUP_NAME.match(name) and SIDECAR in leaves and SNAPSHOT in leaves), reverse=True)
    return complete, sorted(name for name in leaves_by_name if name not in complete)


def expired_backups(complete, keep, current=None):
    """The complete backups (newest first) that retention removes: those older than the newest ``keep``,
    never ``current`` (the backup just made); none when ``keep`` is 0."""
    return [name for name in complete[keep:] if name != current] if keep > 0 else []


# ---- which control plane a snapshot belongs to -------------------------------------------


def active_key_name(hosted_cluster):
    """Name of the HostedCluster's active aescbc key Secret, or None without one."""
    spec = (hosted_cluster or {}).get("spec") or {}
    return (((spec.get("secretEncryption") or {}).get("aescbc") or {}).get("activeKey") or {}).get("name")


def key_fingerprint(secret):
    """``sha256:<hex>`` of the key bytes in the Secret's ``data.key``; the key itself is never returned."""
    encoded = ((secret or {}).get("data") or {}).get("key")
    if not encoded:
        raise SnapshotFileError(
            "the etcd encryption key Secret %s has no data.key; check spec.secretEncryption.aescbc.activeKey "
            "of the HostedCluster" % ((secret or {}).get("metadata") or {}).get("name", "")
        )
    try:
        raw = base64.b64decode(encoded)
    except (binascii.Error, TypeError, ValueError):
        raise SnapshotFileError("the etcd encryption key Secret's data.key is not base64")
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def binding(hosted_cluster, key_secret=None, etcd_version=None):
    """What ties a snapshot to its control plane, from the HostedCluster and its active key Secret."""
    meta = (hosted_cluster or {}).get("metadata") or {}
    if not meta.get("uid") or not meta.get("name") or not meta.get("namespace"):
        raise SnapshotFileError("the HostedCluster given has no metadata.uid, name or namespace")
    key_name = active_key_name(hosted_cluster)
    if key_name and not key_secret:
        raise SnapshotFileError(
            "HostedCluster %s/%s encrypts etcd with key Secret %s, which could not be read: grant get on secrets in "
            "%s (ClusterRole hcp-etcd-hostedcluster-secrets in docs/rbac.yml)"
            % (meta["namespace"], meta["name"], key_name, meta["namespace"])
        )
    return {
        "hosted_cluster_uid": meta["uid"],
        "hosted_cluster_namespace": meta["namespace"],
        "cluster_name": meta["name"],
        "etcd_version": etcd_version,
        "encryption_key_fingerprint": key_fingerprint(key_secret) if key_name else NO_ENCRYPTION_KEY,
    }


def _minor(version):
    parsed = etcd_cli.parse_version("version: %s" % version) if version else None
    return parsed[:2] if parsed else None


def is_newer_minor(recorded, running):
    """True when etcd ``recorded`` is a newer major.minor than ``running`` (both known)."""
    snap, live = _minor(recorded), _minor(running)
    return bool(snap and live and snap > live)


def version_problem(recorded, running):
    """Why a snapshot of etcd ``recorded`` cannot go onto members running ``running`` (None when it can).

    The same major.minor, or the one minor before (3.5 onto 3.6: etcd's upgrade path, the members
    start on the restored 3.5 data as on data an upgrade left). Never a newer minor onto older members:
    etcd refuses to start on data whose cluster version is newer than its own."""
    snap, live = _minor(recorded), _minor(running)
    if snap is None or live is None or snap == live or (snap[0] == live[0] and snap[1] + 1 == live[1]):
        return None
    if is_newer_minor(recorded, running):
        return ("etcd_version %s, not %s: a snapshot of a newer etcd cannot be restored onto older members (etcd does "
                "not start on data of a newer version); upgrade etcd first, or pick a backup taken on %d.%d"
                % (recorded, running, live[0], live[1]))
    return ("etcd_version %s, not %s: etcd upgrades one minor version at a time; pick a backup taken on %d.%d or %d.%d"
            % (recorded, running, live[0], live[1], live[0], live[1] - 1))


def binding_problems(sidecar, expected):
    """What ties the snapshot to another control plane, or is not recorded: a list of sentences.

    ``expected`` is a ``binding()``; its ``etcd_version`` may be None (the running etcd could not be
    asked), then the versions are not compared. etcd versions are compared by major.minor
    (``version_problem``)."""
    sidecar = sidecar or {}
    problems = []
    missing = [key for key in BINDING_KEYS if not sidecar.get(key)]
    if missing:
        problems.append("its sidecar does not record %s" % ", ".join(missing))
    for key in BINDING_KEYS:
        recorded, wanted = sidecar.get(key), expected.get(key)
        if not recorded or not wanted:
            continue
        if key == "etcd_version":
            problem = version_problem(recorded, wanted)
            if problem:
                problems.append(problem)
        elif recorded != wanted:
            problems.append("%s %s, not %s" % (key, recorded, wanted))
    return problems


def check_binding(path, sidecar, expected, allow_foreign=False):
    """Refuse a snapshot of another control plane, naming what differs; with ``allow_foreign``
    return the problems instead (for the caller to report). A snapshot of a newer etcd minor is refused
    whatever ``allow_foreign`` says: the members cannot start on it, so no override can make the restore work."""
    problems = binding_problems(sidecar, expected)
    recorded, running = (sidecar or {}).get("etcd_version"), expected.get("etcd_version")
    if is_newer_minor(recorded, running):
        raise SnapshotFileError("snapshot %s cannot be restored onto these members: %s. Nothing was changed"
                                % (path, version_problem(recorded, running)))
    if problems and not allow_foreign:
        raise SnapshotFileError(
            "snapshot %s is not bound to this control plane (%s/%s, uid %s): %s. Pick a backup of this cluster, or "
            "pass %s if you know it is the data to restore here"
            % (path, expected.get("hosted_cluster_namespace"), expected.get("cluster_name"),
               expected.get("hosted_cluster_uid"), "; ".join(problems), FOREIGN_OVERRIDE)
        )
    return problems


# ---- space on the member's volume --------------------------------------------------------


def save_space_needed(db_size):
    """Bytes free that a `snapshot save` beside a ``db_size``-byte database needs."""
    return int(db_size * 1.1) + SAVE_SPACE_MARGIN
