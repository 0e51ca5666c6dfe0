#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: etcd_backup_dir
short_description: Put a complete backup into place on the controller and keep the newest ones
version_added: 0.3.0
author:
  - hcp.etcd maintainers (@hcp-etcd)
description:
  - A backup is written into a hidden partial directory (C(.<UTC time>.partial)) by M(hcp.etcd.etcd_snapshot). This
    module writes the O(files) beside the snapshot (mode 0600), renames the partial directory to O(path) (one
    C(rename), so a backup directory is either complete or absent), then removes the complete backups of the same
    directory older than the newest O(keep).
  - A backup counts as complete when its directory is named by its UTC time (C(YYYYMMDDTHHMMSSZ)) and holds
    C(etcd-snapshot.db) and its sidecar C(etcd-snapshot.db.json); the same rule as the store's retention
    (M(hcp.etcd.etcd_backup_store) O(hcp.etcd.etcd_backup_store#module:state=pruned)). Directories that failed backups
    left are never counted and never removed; they come back in RV(incomplete). The backup just placed is never
    removed.
  - A removed backup loses its sidecar first, so a removal that stops half-way leaves an incomplete directory, never a
    damaged complete backup.
  - One module run for what took the C(copy), C(command) and C(find) tasks before (each module run costs a Python
    start on the controller).
options:
  partial:
    description: The partial directory that holds C(etcd-snapshot.db) and its sidecar.
    type: path
    required: true
  path:
    description:
      - The backup's directory, named by its UTC time, beside O(partial). It must not exist.
    type: path
    required: true
  files:
    description:
      - File names and text to write into the backup (mode 0600) before it is put into place.
      - Never logged (it may carry the encryption key Secret, encrypted to its age recipients).
    type: dict
    default: {}
  keep:
    description: Keep the newest O(keep) complete backups of the directory that holds O(path); V(0) keeps every one.
    type: int
    default: 0
attributes:
  check_mode:
    support: full
    description: Writes, renames and removes nothing; returns what it would remove.
  diff_mode:
    support: none
    description: Returns no diff.
"""

EXAMPLES = r"""
- name: Put the backup into place and keep the newest 7
  hcp.etcd.etcd_backup_dir:
    partial: /backups/clusters/demo/.20261201T030000Z.partial
    path: /backups/clusters/demo/20261201T030000Z
    files:
      hostedcluster.yaml: "{{ hosted_cluster | to_nice_yaml }}"
    keep: 7
  register: placed
"""

RETURN = r"""
path:
  description: The backup's directory.
  returned: always
  type: str
  sample: /backups/clusters/demo/20261201T030000Z
complete:
  description: The complete backups of the directory before any removal, newest first, the new one included.
  returned: always
  type: list
  elements: str
  sample: [/backups/clusters/demo/20261201T030000Z, /backups/clusters/demo/20261130T030000Z]
removed:
  description: The complete backups removed by O(keep) (would be removed, in check mode).
  returned: always
  type: list
  elements: str
  sample: [/backups/clusters/demo/20261123T030000Z]
incomplete:
  description: The directories beside it that are not complete backups (failed or interrupted runs); not removed.
  returned: always
  type: list
  elements: str
  sample: [/backups/clusters/demo/.20261129T030000Z.partial]
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hcp.etcd.plugins.module_utils import snapshot_file


class BackupDirError(Exception):
    """Nothing was changed; the message names the fix."""


def listing(directory):
    """``{name: names of the files it holds}`` of every directory under ``directory``."""
    found = {}
    for name in os.listdir(directory):
        full = os.path.join(directory, name)
        if os.path.isdir(full) and not os.path.islink(full):
            found[name] = set(os.listdir(full))
    return found


def place(partial, path, files, keep, check_mode=False):
    """Write ``files`` into ``partial``, rename it to ``path``, remove the expired complete backups beside it."""
    parent, name = os.path.split(path.rstrip("/"))
    if os.path.dirname(partial.rstrip("/")) != parent:
        raise BackupDirError("partial %s and path %s are not in the same directory: the rename would not be atomic" % (partial, path))
    if os.path.lexists(path):
        raise BackupDirError("%s exists already: a backup of that time is in place; nothing was changed, back up again" % path)
    if not check_mode:
        missing = [leaf for leaf in (snapshot_file.SNAPSHOT, snapshot_file.SIDECAR) if not os.path.isfile(os.path.join(partial, leaf))]
        if missing:
            raise BackupDirError("%s holds no %s: it is not a complete backup and is not put into place; back up again"
                                 % (partial, " and no ".join(missing)))
        for leaf, text in sorted(files.items()):
            if os.path.basename(leaf) != leaf or leaf in ("", ".", ".."):
                raise BackupDirError("file name %r is not a plain name inside the backup" % leaf)
            snapshot_file.write_text_0600(os.path.join(partial, leaf), text)
        os.rename(partial, path)
    backups = listing(parent)
    backups.setdefault(name, {snapshot_file.SNAPSHOT, snapshot_file.SIDECAR})  # check mode: as if it were placed
    complete, incomplete = snapshot_file.sort_backups(backups)
    removed = snapshot_file.expired_backups(complete, keep, current=name)
    if not check_mode:
        for old in removed:
            os.unlink(os.path.join(parent, old, snapshot_file.SIDECAR))  # first: a cut removal leaves an incomplete one
            shutil.rmtree(os.path.join(parent, old))
    return dict(changed=True, path=path, complete=[os.path.join(parent, n) for n in complete],
                removed=[os.path.join(parent, n) for n in removed], incomplete=[os.path.join(parent, n) for n in incomplete])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            partial=dict(type="path", required=True),
            path=dict(type="path", required=True),
            files=dict(type="dict", default={}, no_log=True),
            keep=dict(type="int", default=0),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = place(p["partial"], p["path"], dict((k, str(v)) for k, v in p["files"].items()), p["keep"], module.check_mode)
    except (BackupDirError, OSError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
