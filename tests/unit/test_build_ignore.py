# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection artifact carries the collection, not the developer's machine.

`ansible-galaxy collection build` packs every file of the directory that galaxy.yml's build_ignore
does not exclude, ignored by git or not. The checkout's files are copied to a scratch directory,
the leftovers of a working day are added there (a local backup with an etcd snapshot, the venv,
caches, test output), and the artifact built from it must hold none of them, nor the development
tooling; it must still hold the collection's content.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import sys
import tarfile

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GALAXY = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
DIRTY = [
    "backups/clusters/demo/20261126T122545Z/etcd-snapshot.db",
    "backups/clusters/demo/20261126T122545Z/encryption-key.yaml",
    ".venv/bin/python",
    ".collections/ansible_collections/hcp/etcd/galaxy.yml",
    ".cache/dist/hcp-etcd-0.0.9.tar.gz",
    ".ansible/tmp/ansible-local-1/x",
    ".pytest_cache/v/cache/lastfailed",
    "tests/output/e2e/backup.log",
    "plugins/module_utils/__pycache__/etcd_cli.cpython-311.pyc",
    "changelogs/.plugin-cache.yaml",
    "etcd-snapshot.db",
]
NOT_SHIPPED = (".venv/", ".collections/", ".cache/", ".ansible/", ".pytest_cache/", ".ci/", "backups/",
               "bench/", "tests/output/", "tests/cluster/", "tests/kind/", "Makefile", "requirements-dev.txt",
               "ansible.cfg", ".gitignore")


@pytest.fixture(scope="module")
def artifact_members(tmp_path_factory):
    src = tmp_path_factory.mktemp("src") / "hcp.etcd"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           stdout=subprocess.PIPE).stdout.decode().split("\0")
    for name in filter(None, files):
        if os.path.isfile(os.path.join(REPO, name)):
            os.makedirs(os.path.dirname(str(src / name)), exist_ok=True)
            shutil.copy2(os.path.join(REPO, name), str(src / name))
    for name in DIRTY:
        os.makedirs(os.path.dirname(str(src / name)), exist_ok=True)
        (src / name).write_bytes(b"left over\n")
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([GALAXY, "collection", "build", "--output-path", str(out), str(src)], check=False,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert proc.returncode == 0, proc.stdout
    [tarball] = [p for p in os.listdir(str(out)) if p.endswith(".tar.gz")]
    with tarfile.open(str(out / tarball)) as tar:
        return [m.name + ("/" if m.isdir() else "") for m in tar.getmembers()]


def test_no_leftover_or_development_file_is_packed(artifact_members):
    packed = [m for m in artifact_members if m.startswith(NOT_SHIPPED) or m.endswith((".db", ".pyc", ".tar.gz"))
              or m == "changelogs/.plugin-cache.yaml"]
    assert not packed, "packed into the artifact: %s" % packed


def test_the_collection_itself_is_packed(artifact_members):
    for name in ("MANIFEST.json", "FILES.json", "README.md", "LICENSE", "meta/runtime.yml", "CHANGELOG.md",
                 "changelogs/changelog.yaml", "roles/backup/README.md", "roles/restore/tasks/main.yml",
                 "plugins/modules/etcd_snapshot.py", "plugins/filter/quantity_bytes.yml", "playbooks/restore.yml"):
        assert name in artifact_members, "%s is missing from the artifact" % name
