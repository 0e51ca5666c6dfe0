# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`ansible-doc` renders every filter, module and inventory plugin of hcp.etcd.

Filters are found by loading each FilterModule under plugins/filter, so a filter added without its
YAML sidecar doc (plugins/filter/<name>.yml) fails here; the documented positional arguments must
be the Python function's. Runs the venv's ansible-doc on the checkout (linked into a collections
path of its own).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import importlib
import inspect
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def filter_functions():
    found = {}
    for path in sorted(glob.glob(os.path.join(REPO, "plugins", "filter", "*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        if name == "__init__":
            continue
        module = importlib.import_module("ansible_collections.hcp.etcd.plugins.filter.%s" % name)
        found.update(module.FilterModule().filters())
    return found


def plugin_names(kind):
    return sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(REPO, "plugins", kind, "*.py"))
                  if not p.endswith("__init__.py"))


@pytest.fixture(scope="module")
def ansible_doc(tmp_path_factory):
    """ansible-doc --json for plugins of one type, with hcp.etcd from this checkout."""
    base = tmp_path_factory.mktemp("collections")
    os.makedirs(str(base / "ansible_collections" / "hcp"))
    os.symlink(REPO, str(base / "ansible_collections" / "hcp" / "etcd"))
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join(filter(None, [str(base), os.environ.get("ANSIBLE_COLLECTIONS_PATH")]))
    env.pop("ANSIBLE_CONFIG", None)
    binary = os.path.join(os.path.dirname(sys.executable), "ansible-doc")
    cache = {}

    def run(kind, names):
        key = (kind, tuple(names))
        if key not in cache:
            proc = subprocess.run([binary, "-t", kind, "--json"] + ["hcp.etcd.%s" % n for n in names],
                                  env=env, cwd=str(base), capture_output=True, text=True, timeout=300, check=False)
            assert proc.returncode == 0, "ansible-doc -t %s failed:\n%s" % (kind, proc.stderr)
            assert "[WARNING]" not in proc.stderr and "[ERROR]" not in proc.stderr, proc.stderr
            cache[key] = json.loads(proc.stdout)
        return cache[key]

    return run


FILTERS = sorted(filter_functions())


def test_the_filters_and_modules_are_found():
    assert {"control_plane_namespace", "etcd_topology", "quantity_bytes", "access_label", "pods_selected_by",
            "without_managed_fields"} <= set(FILTERS)
    assert {"etcd_snapshot", "etcd_restore_member", "etcd_verify", "etcd_snapshot_info"} <= set(plugin_names("modules"))


@pytest.mark.parametrize("name", FILTERS)
def test_every_filter_has_docs_matching_its_arguments(ansible_doc, name):
    docs = ansible_doc("filter", FILTERS)
    entry = docs.get("hcp.etcd.%s" % name)
    assert entry and entry.get("doc"), "no documentation for filter hcp.etcd.%s: add plugins/filter/%s.yml" % (name, name)
    doc = entry["doc"]
    assert doc["name"] == name and doc["short_description"] and doc["description"]
    assert entry.get("examples") and "hcp.etcd.%s" % name in entry["examples"]
    assert entry.get("return", {}).get("_value", {}).get("description")
    positional = [p.strip() for p in doc.get("positional", "").split(",") if p.strip()]
    assert positional and positional[0] == "_input"
    assert set(positional) <= set(doc["options"]), "every positional argument is documented"
    params = list(inspect.signature(filter_functions()[name]).parameters.values())
    assert [p.name for p in params[1:]] == positional[1:], "documented arguments differ from the function's"
    required = [p for p in positional if doc["options"][p].get("required")]
    assert required == [p for p, q in zip(positional, params) if q.default is inspect.Parameter.empty]


@pytest.mark.parametrize("kind", ["module", "inventory"])
def test_every_module_and_inventory_plugin_has_docs(ansible_doc, kind):
    names = plugin_names("modules" if kind == "module" else kind)
    docs = ansible_doc(kind, names)
    for name in names:
        entry = docs.get("hcp.etcd.%s" % name) or {}
        doc = entry.get("doc")
        assert doc and doc.get("short_description") and doc.get("options"), "hcp.etcd.%s: no documentation" % name
        if kind == "module":
            assert entry.get("examples"), "hcp.etcd.%s: no EXAMPLES" % name
            for key, value in (entry.get("return") or {}).items():
                assert value.get("description"), "hcp.etcd.%s: RETURN %s has no description" % (name, key)


SAMPLES_PENDING = set()


@pytest.mark.parametrize("name", plugin_names("modules"))
def test_every_return_value_of_a_module_has_a_sample(ansible_doc, name):
    if name in SAMPLES_PENDING:
        pytest.skip("RETURN samples of %s pending" % name)
    returns = ansible_doc("module", plugin_names("modules"))["hcp.etcd.%s" % name].get("return") or {}
    missing = sorted(key for key, value in returns.items() if "sample" not in value)
    assert not missing, "hcp.etcd.%s: RETURN values without a sample: %s" % (name, ", ".join(missing))


@pytest.mark.parametrize("role", sorted(os.listdir(os.path.join(REPO, "roles"))))
def test_every_role_has_a_readme_and_renders_in_ansible_doc(ansible_doc, role):
    # galaxy-importer refuses a collection whose role has no README.md
    readme = os.path.join(REPO, "roles", role, "README.md")
    assert os.path.isfile(readme), "roles/%s/README.md missing" % role
    with open(readme) as f:
        text = f.read()
    assert text.startswith("# hcp.etcd.%s\n" % role)
    entry = ansible_doc("role", [role])["hcp.etcd.%s" % role]["entry_points"]["main"]
    for option, spec in entry["options"].items():
        if spec.get("required"):
            assert "`%s`" % option in text, "roles/%s/README.md does not name the required option %s" % (role, option)
