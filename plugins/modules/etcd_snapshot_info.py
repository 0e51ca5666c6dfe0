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
    lacks the sha256 trailer that C(snapshot save) appends, or belongs to another control plane. With
    O(hosted_cluster), the sidecar must record that HostedCluster's UID, namespace and name, the fingerprint
    of its etcd encryption key and (when O(etcd_version) is known) the same etcd major.minor version. A
    difference, or a sidecar that does not record one of these, is refused naming it, unless
    O(allow_foreign_snapshot=true).
  - Runs on the controller only and changes nothing, so the restore role calls it during pre-flight, before the
    first change to the hosted control plane.
options:
  path:
    description: Path of the snapshot file on the controller.
    type: path
    required: true
  hosted_cluster:
    description:
      - The HostedCluster to restore (as C(kubernetes.core.k8s_info) returns it). The sidecar must be bound
        to it. Omit it to check the file only.
    type: dict
  encryption_key_secret:
    description:
      - The Secret named by the HostedCluster's C(spec.secretEncryption.aescbc.activeKey); only its key's
        sha256 is compared. Required when O(hosted_cluster) has such a key.
      - Only C(metadata.name) and C(data.key) are read. Give no more than those two, as
        every string of this secret option is masked wherever it appears in the results (the Secret's namespace is
        often the HostedCluster's, its owner the HostedCluster's UID).
    type: dict
  etcd_version:
    description: Version of the etcd that runs now (for example C(3.5.16)); empty when it could not be read.
    type: str
    default: ""
  allow_foreign_snapshot:
    description: Accept a snapshot bound to another control plane, or not bound at all; the differences are returned.
    type: bool
    default: false
  allow_missing_sidecar:
    description:
      - Accept a snapshot without a sidecar. Its checksum then cannot be compared; a file with a valid sha256
        trailer is still checked against the trailer, a file without one is treated as a raw C(member/snap/db) copy.
        Its binding cannot be compared either, so with O(hosted_cluster) it also needs O(allow_foreign_snapshot).
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
    hosted_cluster: "{{ hostedcluster }}"
    encryption_key_secret: "{{ key_secret }}"
    etcd_version: 3.5.16
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
  sample: /root/hcp-etcd-backups/clusters/demo/20261126T122545Z/etcd-snapshot.db
sha256:
  description: sha256 of the file, computed here.
  returned: always
  type: str
  sample: a071b79ee0b3be4e53e8b0fe7dbdfa1fdb45665923d90bd12175be9ee75c1760
size:
  description: Size of the file in bytes.
  returned: always
  type: int
  sample: 1347616
method:
  description: How the snapshot was made (C(save) or C(copy_db)), from the sidecar or guessed from the trailer.
  returned: always
  type: str
  sample: save
has_trailer:
  description: Whether the file ends with a valid sha256 trailer.
  returned: always
  type: bool
  sample: true
needs_skip_hash_check:
  description: Whether restoring it needs C(--skip-hash-check).
  returned: always
  type: bool
  sample: false
revision:
  description: Revision recorded in the sidecar (0 without sidecar).
  returned: always
  type: int
  sample: 306
sidecar:
  description: The sidecar's content, or an empty dict.
  returned: always
  type: dict
  sample: {"cluster_name": "demo", "hosted_cluster_namespace": "clusters", "member": "etcd-0", "method": "save",
    "sha256": "a071b79ee0b3be4e53e8b0fe7dbdfa1fdb45665923d90bd12175be9ee75c1760", "size": 1347616, "revision": 306}
foreign:
  description: What binds the snapshot to another control plane (accepted with O(allow_foreign_snapshot)); empty when none.
  returned: always
  type: list
  elements: str
  sample: []
etcd_version_compared:
  description: Whether the etcd versions were compared (false when O(etcd_version) is empty).
  returned: always
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hcp.etcd.plugins.module_utils import etcd_cli, snapshot_file


def check_snapshot(path, hosted_cluster=None, encryption_key_secret=None, etcd_version="",
                   allow_foreign_snapshot=False, allow_missing_sidecar=False):
    """Facts of a snapshot file; raises EtcdCliError naming the fix when it must not be restored."""
    facts = snapshot_file.inspect(path, allow_missing_sidecar=allow_missing_sidecar)
    sidecar = facts["sidecar"] or {}
    foreign = []
    if hosted_cluster:
        expected = snapshot_file.binding(hosted_cluster, encryption_key_secret, etcd_version or None)
        foreign = snapshot_file.check_binding(path, sidecar, expected, allow_foreign_snapshot)
    skip, _reason = etcd_cli.decide_skip_hash_check("auto", method=facts["method"], has_trailer=facts["has_trailer"])
    return {
        "path": path,
        "sha256": facts["sha256"],
        "size": facts["size"],
        "method": facts["method"],
        "has_trailer": facts["has_trailer"],
        "needs_skip_hash_check": skip,
        "revision": int(sidecar.get("revision") or 0),
        "sidecar": sidecar,
        "foreign": foreign,
        "etcd_version_compared": bool(hosted_cluster and etcd_version),
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            hosted_cluster=dict(type="dict"),
            encryption_key_secret=dict(type="dict", no_log=True),
            etcd_version=dict(type="str", default=""),
            allow_foreign_snapshot=dict(type="bool", default=False),
            allow_missing_sidecar=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    try:
        facts = check_snapshot(**module.params)
    except (etcd_cli.EtcdCliError, OSError) as exc:
        module.fail_json(msg=str(exc))
    for problem in facts["foreign"]:
        module.warn("snapshot %s accepted with allow_foreign_snapshot: %s" % (facts["path"], problem))
    module.exit_json(changed=False, **facts)


if __name__ == "__main__":
    main()
