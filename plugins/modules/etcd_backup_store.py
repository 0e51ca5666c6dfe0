#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: etcd_backup_store
short_description: Keep hosted etcd backups in an S3-compatible store (MinIO, Ceph RGW, NooBaa, AWS S3)
version_added: 0.1.0
author:
  - hcp.etcd maintainers (@hcp-etcd)
description:
  - Uploads a complete backup directory made by the P(hcp.etcd.backup#role) role to C(s3://bucket/prefix), downloads a
    snapshot from it for a restore, lists the backups of a cluster and applies retention in the bucket.
  - Below the prefix a backup keeps the layout of a local backup, C(<hosted_cluster_namespace>/<cluster_name>/<UTC time>/).
    A backup counts only when its sidecar C(etcd-snapshot.db.json) is stored; the sidecar is uploaded last, after
    the snapshot's sha256 computed while it was read equals the sidecar's (checked at the end of the file, before
    its object can be completed). An upload cut short or failed leaves no sidecar (its multipart upload is aborted,
    the objects of the backup already stored are removed) and is never listed, restored or counted.
  - Every file but the sidecar is stored compressed with zstd (O(compression)) and, given O(age_recipients),
    encrypted to them with age; the object names stay the local ones. The stored sidecar adds the encoding,
    the recipients (public keys) and each object's stored sha256 and size.
  - An upload encodes each file while it sends it (a multipart upload of unknown length in 16 MiB parts), with no
    scratch copy on the controller; the stored sha256 and size the sidecar records are those of the bytes sent.
    Uploads and downloads keep the controller's memory flat whatever the size. A download checks the stored bytes'
    sha256, decrypts and decompresses file to file, and renames the snapshot into place only when its sha256
    equals the sidecar's.
  - Runs on the controller. The client is C(minio) (minio-py) rather than boto3, whose botocore requires
    C(python-dateutil<3) while the kubernetes client these modules use requires C(python-dateutil>=3).
requirements:
  - minio >= 7.2
  - zstandard >= 0.22
  - pyrage >= 1.2
options:
  store:
    description: The store, C(s3://bucket) or C(s3://bucket/prefix).
    type: str
    required: true
  state:
    description:
      - C(checked) refuses a missing bucket, refused credentials or a store that does not allow writes (a probe object
        is written and removed); C(uploaded) uploads O(src) to O(path); C(downloaded) downloads O(snapshot) and its
        sidecar into O(dest); C(listed) returns the complete backups under O(path); C(pruned) removes the complete
        backups under O(path) older than the newest O(keep) (never O(current), never an incomplete one); C(recorded)
        stores O(record) as C(drill.json) beside the snapshot O(snapshot) (a restore drill's verdict, which C(listed) shows).
    type: str
    required: true
    choices: [checked, uploaded, downloaded, listed, pruned, recorded]
  endpoint_url:
    description: The store's endpoint, C(https://host:port). Defaults to E(AWS_ENDPOINT_URL), then AWS S3.
    type: str
  region:
    description: The region. Defaults to E(AWS_REGION), then E(AWS_DEFAULT_REGION).
    type: str
  access_key:
    description: Access key. Defaults to E(AWS_ACCESS_KEY_ID). Never logged.
    type: str
  secret_key:
    description: Secret key. Defaults to E(AWS_SECRET_ACCESS_KEY). Never logged.
    type: str
  session_token:
    description: Session token. Defaults to E(AWS_SESSION_TOKEN). Never logged.
    type: str
  ca_bundle:
    description: CA certificates (PEM) that sign the endpoint's certificate. Defaults to E(AWS_CA_BUNDLE), then the system's.
    type: path
  validate_certs:
    description: Check the endpoint's certificate.
    type: bool
    default: true
  src:
    description: With O(state=uploaded), the complete local backup directory (it holds C(etcd-snapshot.db) and its sidecar).
    type: path
  exclude:
    description:
      - With O(state=uploaded), names of files of O(src) that are not uploaded (the role keeps the etcd encryption
        key C(encryption-key.yaml) on the controller unless told otherwise).
    type: list
    elements: str
    default: []
  path:
    description:
      - With O(state=uploaded), the backup's path below the prefix (C(<namespace>/<cluster>/<UTC time>)); with
        O(state=listed) or O(state=pruned), the cluster's path (C(<namespace>/<cluster>)).
    type: str
  snapshot:
    description:
      - With O(state=downloaded) or O(state=recorded), the URL of a backup's snapshot, C(s3://bucket/prefix/.../etcd-snapshot.db).
    type: str
  record:
    description: With O(state=recorded), the drill's verdict to store beside the snapshot.
    type: dict
  dest:
    description: With O(state=downloaded), the local directory (created 0700) that receives the snapshot and its sidecar (0600).
    type: path
  compression:
    description:
      - With O(state=uploaded), compress every uploaded file with zstd (level 3, streamed) or not. A download
        decompresses whatever the stored sidecar records.
    type: str
    choices: [zstd, none]
    default: zstd
  age_recipients:
    description:
      - With O(state=uploaded), encrypt every uploaded file but the sidecar to these age X25519 recipients
        (C(age1...) public keys, C(age-keygen -y)), streamed. The sidecar stays in clear (it holds no secret).
    type: list
    elements: str
    default: []
  age_identity:
    description:
      - With O(state=downloaded), the content of an age identity file (C(AGE-SECRET-KEY-...) lines) that decrypts an
        encrypted backup. Defaults to E(HCP_ETCD_AGE_IDENTITY). Never logged.
    type: str
  age_identity_file:
    description: With O(state=downloaded), a file holding the age identity, read on the controller. Defaults to E(HCP_ETCD_AGE_IDENTITY_FILE).
    type: path
  keep:
    description: With O(state=pruned), how many complete backups to keep (0 keeps all).
    type: int
    default: 7
  current:
    description: With O(state=pruned), the name of a backup that is never removed (the one just made).
    type: str
attributes:
  check_mode:
    support: partial
    description: Can run in check mode.
    details: C(checked) and C(listed) run in check mode; the others only report that they would change something.
  diff_mode:
    support: none
    description: Returns no diff.
"""

EXAMPLES = r"""
- name: Refuse a missing bucket or refused credentials before the backup
  hcp.etcd.etcd_backup_store:
    store: s3://etcd-backups/hcp
    endpoint_url: https://minio.example.com:9000
    state: checked

- name: Upload a complete backup (the sidecar last)
  hcp.etcd.etcd_backup_store:
    store: s3://etcd-backups/hcp
    state: uploaded
    src: /root/hcp-etcd-backups/clusters/demo/20261130T030000Z
    path: clusters/demo/20261130T030000Z

- name: Download a snapshot for a restore (sha256 checked against its sidecar)
  hcp.etcd.etcd_backup_store:
    store: s3://etcd-backups/hcp
    state: downloaded
    snapshot: s3://etcd-backups/hcp/clusters/demo/20261130T030000Z/etcd-snapshot.db
    dest: /root/hcp-etcd-restores/demo/store/20261130T030000Z

- name: Keep the newest 7 complete backups in the bucket
  hcp.etcd.etcd_backup_store:
    store: s3://etcd-backups/hcp
    state: pruned
    path: clusters/demo
    keep: 7
    current: 20261130T030000Z
"""

RETURN = r"""
url:
  description: With O(state=uploaded), the URL of the uploaded snapshot (give it as C(-e snapshot=) to a restore).
  returned: when state is uploaded
  type: str
  sample: s3://etcd-backups/hcp/clusters/demo/20261130T030000Z/etcd-snapshot.db
keys:
  description: With O(state=uploaded), the keys written, the sidecar last.
  returned: when state is uploaded
  type: list
  elements: str
  sample: [hcp/clusters/demo/20261130T030000Z/etcd-snapshot.db, hcp/clusters/demo/20261130T030000Z/etcd-snapshot.db.json]
sha256:
  description: sha256 of the snapshot's bytes sent (uploaded) or written (downloaded).
  returned: when state is uploaded or downloaded
  type: str
  sample: a071b79ee0b3be4e53e8b0fe7dbdfa1fdb45665923d90bd12175be9ee75c1760
encoding:
  description: How the snapshot is stored (C(zstd), C(zstd+age), C(age) or C(none)).
  returned: when state is uploaded or downloaded
  type: str
  sample: zstd+age
stored_size:
  description: Size in bytes of the stored (encoded) snapshot object; RV(size) is the snapshot's own.
  returned: when state is uploaded or downloaded
  type: int
  sample: 402113
size:
  description: Size in bytes of the snapshot.
  returned: when state is uploaded or downloaded
  type: int
  sample: 1347616
path:
  description: With O(state=downloaded), the local snapshot file (its sidecar beside it).
  returned: when state is downloaded
  type: str
  sample: /root/hcp-etcd-restores/demo/store/20261130T030000Z/etcd-snapshot.db
backups:
  description: With O(state=listed), the complete backups, newest first.
  returned: when state is listed
  type: list
  elements: dict
  sample: [{"name": "20261130T030000Z", "url": "s3://etcd-backups/hcp/clusters/demo/20261130T030000Z/etcd-snapshot.db",
            "size": 1347616, "sha256": "a071b79e...", "revision": 306, "etcd_version": "3.5.35",
            "taken_at": "2026-11-30T03:00:02Z", "cluster_name": "demo", "hosted_cluster_namespace": "clusters"}]
removed:
  description: With O(state=pruned), the backups removed.
  returned: when state is pruned
  type: list
  elements: str
  sample: [20261123T030000Z]
incomplete:
  description: With O(state=listed) or O(state=pruned), the names under the cluster's path that are not complete backups (not removed).
  returned: when state is listed or pruned
  type: list
  elements: str
  sample: []
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib
from ansible_collections.hcp.etcd.plugins.module_utils import backup_store

REQUIRED = {"uploaded": ("src", "path"), "downloaded": ("snapshot", "dest"), "listed": ("path",), "pruned": ("path",),
            "recorded": ("snapshot", "record")}


def work(module, store):
    """The result of one operation on the store."""
    p = module.params
    state = p["state"]
    if state == "checked":
        return dict(changed=False, **store.check())
    if state == "listed":
        backups, incomplete = store.list_backups(p["path"])
        return dict(changed=False, backups=backups, incomplete=incomplete)
    if module.check_mode:
        return dict(changed=True)
    if state == "uploaded":
        return dict(changed=True, **store.upload_backup(p["src"], p["path"], exclude=p["exclude"]))
    if state == "recorded":
        return dict(changed=True, **store.record_drill(p["snapshot"], p["record"]))
    if state == "downloaded":
        done = store.download_snapshot(p["snapshot"], p["dest"])
        return dict(changed=done.pop("downloaded"), **done)
    pruned = store.prune(p["path"], p["keep"], current=p["current"])
    return dict(changed=bool(pruned["removed"]), **pruned)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store=dict(type="str", required=True),
            state=dict(type="str", required=True, choices=["checked", "uploaded", "downloaded", "listed", "pruned", "recorded"]),
            endpoint_url=dict(type="str", fallback=(env_fallback, ["AWS_ENDPOINT_URL"])),
            region=dict(type="str", fallback=(env_fallback, ["AWS_REGION", "AWS_DEFAULT_REGION"])),
            access_key=dict(type="str", no_log=True, fallback=(env_fallback, ["AWS_ACCESS_KEY_ID"])),
            secret_key=dict(type="str", no_log=True, fallback=(env_fallback, ["AWS_SECRET_ACCESS_KEY"])),
            session_token=dict(type="str", no_log=True, fallback=(env_fallback, ["AWS_SESSION_TOKEN"])),
            ca_bundle=dict(type="path", fallback=(env_fallback, ["AWS_CA_BUNDLE"])),
            validate_certs=dict(type="bool", default=True),
            src=dict(type="path"),
            exclude=dict(type="list", elements="str", default=[]),
            path=dict(type="str"),
            snapshot=dict(type="str"),
            record=dict(type="dict"),
            dest=dict(type="path"),
            compression=dict(type="str", default="zstd", choices=["zstd", "none"]),
            age_recipients=dict(type="list", elements="str", default=[]),
            age_identity=dict(type="str", no_log=True, fallback=(env_fallback, ["HCP_ETCD_AGE_IDENTITY"])),
            age_identity_file=dict(type="path", fallback=(env_fallback, ["HCP_ETCD_AGE_IDENTITY_FILE"])),
            keep=dict(type="int", default=7),
            current=dict(type="str"),
        ),
        required_if=[("state", state, list(params)) for state, params in REQUIRED.items()],
        supports_check_mode=True,
    )
    p = module.params
    for lib, present in (("minio", backup_store.HAS_MINIO), ("zstandard", backup_store.HAS_ZSTD), ("pyrage", backup_store.HAS_AGE)):
        if not present:
            module.fail_json(msg=missing_required_lib(lib), exception=traceback.format_exc())
    try:
        identity = p["age_identity"] or ""
        if p["age_identity_file"]:
            try:
                with open(p["age_identity_file"]) as handle:
                    identity = handle.read()
            except (IOError, OSError) as exc:
                raise backup_store.StoreError("cannot read the age identity file %s: %s" % (p["age_identity_file"], exc))
        store = backup_store.BackupStore(p["store"], endpoint_url=p["endpoint_url"], region=p["region"], access_key=p["access_key"],
                                         secret_key=p["secret_key"], session_token=p["session_token"], ca_bundle=p["ca_bundle"],
                                         validate_certs=p["validate_certs"], compression=p["compression"],
                                         age_recipients=p["age_recipients"], age_identity=identity)
        result = work(module, store)
    except backup_store.StoreError as exc:
        module.fail_json(msg=str(exc), store=p["store"])
    module.exit_json(store=p["store"], **result)


if __name__ == "__main__":
    main()
