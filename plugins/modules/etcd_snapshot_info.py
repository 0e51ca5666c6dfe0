#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: etcd_snapshot_info
short_description: Check an etcd snapshot file on the controller before it is restored
version_added: 0.1.0
author:
  - hcp.etcd maintainers (@hcp-etcd)
description:
  - Reads a snapshot file made by M(hcp.etcd.etcd_snapshot) and its JSON sidecar (C(<path>.json)) and refuses it,
    with a message that names the fix, when it is missing, truncated, altered (sha256 differs from the sidecar),
    lacks the sha256 trailer that C(snapshot save) appends, or belongs to another cluster.
  - Runs on the controller only and changes nothing, so the restore role calls it during pre-flight, before the
    first change to the hosted control plane.
options:
  path:
    description: Path of the snapshot file on the controller.
    type: path
    required: true
  cluster_name:
    description: HostedCluster the snapshot must belong to (compared with the sidecar); empty skips the check.
    type: str
    default: ""
  hosted_cluster_namespace:
    description: Namespace of that HostedCluster (compared with the sidecar when both are set).
    type: str
    default: ""
  allow_missing_sidecar:
    description:
      - Accept a snapshot without a sidecar. Its checksum then cannot be compared; a file with a valid sha256
        trailer is still checked against the trailer, a file without one is treated as a raw C(member/snap/db) copy.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Read only; runs the same in check mode.
  diff_mode:
    support: none
    description: Returns no diff.
"""

EXAMPLES = r"""
- name: Check the snapshot before restoring it
  hcp.etcd.etcd_snapshot_info:
    path: /backups/clusters/my-cluster/20261126T030000Z/etcd-snapshot.db
    cluster_name: my-cluster
    hosted_cluster_namespace: clusters
  register: snap

- name: Show what will be restored
  ansible.builtin.debug:
    msg: "revision {{ snap.revision }}, {{ snap.size }} bytes, sha256 {{ snap.sha256 }}"
"""

RETURN = r"""
path:
  description: The snapshot file.
  returned: always
  type: str
sha256:
  description: sha256 of the file, computed here.
  returned: always
  type: str
size:
  description: Size of the file in bytes.
  returned: always
  type: int
method:
  description: How the snapshot was made (C(save) or C(copy_db)), from the sidecar or guessed from the trailer.
  returned: always
  type: str
has_trailer:
  description: Whether the file ends with a valid sha256 trailer.
  returned: always
  type: bool
needs_skip_hash_check:
  description: Whether restoring it needs C(--skip-hash-check).
  returned: always
  type: bool
revision:
  description: Revision recorded in the sidecar (0 without sidecar).
  returned: always
  type: int
sidecar:
  description: The sidecar's content, or an empty dict.
  returned: always
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hcp.etcd.plugins.module_utils import etcd_cli


def check_snapshot(path, cluster_name="", hosted_cluster_namespace="", allow_missing_sidecar=False):
    """Facts of a snapshot file; raises EtcdCliError naming the fix when it must not be restored."""
    if not os.path.isfile(path):
        raise etcd_cli.EtcdCliError(
            "snapshot %s not found on the controller; give -e snapshot=<path of an etcd-snapshot.db made by "
            "hcp.etcd.backup> (ls <backup_dir>/<namespace>/<cluster>/ lists them)" % path
        )
    sidecar_file = etcd_cli.sidecar_path(path)
    sidecar = {}
    if os.path.exists(sidecar_file):
        sidecar = etcd_cli.load_sidecar(sidecar_file)
    elif not allow_missing_sidecar:
        raise etcd_cli.EtcdCliError(
            "snapshot %s has no sidecar %s, so its checksum cannot be compared; restore the sidecar next to it, "
            "or pass -e snapshot_allow_missing_sidecar=true to accept the file as it is" % (path, sidecar_file)
        )
    sha256, size = etcd_cli.file_sha256(path)
    if sidecar and size != sidecar["size"]:
        raise etcd_cli.EtcdCliError(
            "snapshot %s has %d bytes but its sidecar records %d: the file is truncated or not the one the "
            "sidecar describes; copy it again from the backup" % (path, size, sidecar["size"])
        )
    if sidecar and sha256 != sidecar["sha256"]:
        raise etcd_cli.EtcdCliError(
            "snapshot %s has sha256 %s but its sidecar records %s: the file was altered or damaged; copy it "
            "again from the backup" % (path, sha256, sidecar["sha256"])
        )
    for key, expected in (("cluster_name", cluster_name), ("hosted_cluster_namespace", hosted_cluster_namespace)):
        if sidecar and expected and sidecar.get(key) and sidecar[key] != expected:
            raise etcd_cli.EtcdCliError(
                "snapshot %s belongs to %s %s, not %s: pick a backup of this cluster" % (path, key, sidecar[key], expected)
            )
    trailer = etcd_cli.snapshot_trailer(path)
    method = sidecar.get("method") or ("save" if trailer["has_trailer"] else "copy_db")
    if method == "save" and not trailer["has_trailer"]:
        raise etcd_cli.EtcdCliError(
            "snapshot %s was made by 'snapshot save' but its sha256 trailer is missing or wrong: the file is "
            "damaged; copy it again from the backup" % path
        )
    skip, _reason = etcd_cli.decide_skip_hash_check("auto", method=method, has_trailer=trailer["has_trailer"])
    return {
        "path": path,
        "sha256": sha256,
        "size": size,
        "method": method,
        "has_trailer": trailer["has_trailer"],
        "needs_skip_hash_check": skip,
        "revision": int(sidecar.get("revision") or 0),
        "sidecar": sidecar,
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            cluster_name=dict(type="str", default=""),
            hosted_cluster_namespace=dict(type="str", default=""),
            allow_missing_sidecar=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    try:
        facts = check_snapshot(**module.params)
    except (etcd_cli.EtcdCliError, OSError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **facts)


if __name__ == "__main__":
    main()
