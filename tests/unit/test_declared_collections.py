# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every collection the shipped content uses is hcp.etcd, ansible.builtin or a galaxy.yml dependency.

Users install ansible-core and the declared dependencies only; the development venv holds more (the
`ansible` bundle), so a filter, lookup, test, module or doc fragment of an undeclared collection
would pass every other test and fail for them ("No filter named 'ansible.utils.remove_keys'").
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# The content users run, and the scenarios and demo that run it the way users do.
SHIPPED = ("roles", "playbooks", "plugins", "meta", "tests/e2e", "tests/demo")
# awx/configure.yml is run by the AWX administrator with the controller's own collection; it is not
# a dependency of the roles and modules (docs/awx.md says to install awx.awx for it).
EXTRA = {"awx": {"awx.awx"}}
FQCN = r"([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*"
USES = [
    re.compile(r"\|\s*" + FQCN),  # Jinja filter
    re.compile(r"\bis\s+(?:not\s+)?" + FQCN),  # Jinja test
    re.compile(r"\b(?:lookup|query|q)\(\s*['\"]" + FQCN),  # lookup
    re.compile(r"^\s*(?:-\s+)?" + FQCN + r"\s*:", re.M),  # module (task key)
    re.compile(r"\bgroup/" + FQCN),  # module_defaults group
    re.compile(r"\brole:\s*" + FQCN),  # role
    re.compile(r"^\s*-\s+" + FQCN + r"\s*$", re.M),  # doc fragment, extend_group
    re.compile(r"\bansible_collections\.([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\."),  # Python import
]


def declared():
    with open(os.path.join(REPO, "galaxy.yml")) as f:
        galaxy = yaml.safe_load(f)
    return {"%s.%s" % (galaxy["namespace"], galaxy["name"]), "ansible.builtin"} | set(galaxy.get("dependencies") or {})


def used(text):
    return set("%s.%s" % m.groups()[:2] for pattern in USES for m in pattern.finditer(text))


def uses_in(top):
    found = {}
    for root, dirs, files in os.walk(os.path.join(REPO, top)):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith((".yml", ".yaml", ".j2", ".py")):
                path = os.path.join(root, name)
                with open(path) as f:
                    for collection in used(f.read()):
                        found.setdefault(collection, []).append(os.path.relpath(path, REPO))
    return found


def test_the_scan_sees_each_kind_of_use():
    text = """
- name: x
  ansible.utils.validate:
  vars:
    a: "{{ b | ansible.utils.remove_keys(target=['managedFields']) }}"
    c: "{{ d is community.general.a_module }}"
    e: "{{ lookup('community.hashi_vault.hashi_vault', 'x') }}"
  module_defaults:
    group/amazon.aws.aws: {}
- role: geerlingguy.mac.homebrew
extends_documentation_fragment:
  - openstack.cloud.openstack
from ansible_collections.cisco.ios.plugins.module_utils import x
"""
    assert used(text) == {"ansible.utils", "community.general", "community.hashi_vault", "amazon.aws",
                          "geerlingguy.mac", "openstack.cloud", "cisco.ios"}
    # not uses: API groups, attribute paths, file names
    assert used("api_version: hypershift.openshift.io/v1beta1\nwhen: item.metadata.name is defined\n"
                "dest: etcd-snapshot.db.json\n") == set()


def test_every_collection_used_by_the_shipped_content_is_declared():
    allowed = declared()
    for top in SHIPPED + tuple(EXTRA):
        undeclared = dict((c, files) for c, files in uses_in(top).items() if c not in allowed | EXTRA.get(top, set()))
        assert not undeclared, "used but not in galaxy.yml dependencies: %s" % undeclared
