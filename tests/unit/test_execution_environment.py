# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The execution environment definition produces a build context that really carries hcp.etcd.

No container engine here: the collection is built (``ansible-galaxy collection build``), then
``ansible-builder create`` writes the build context exactly as ``ansible-builder build`` would
before calling podman. The tests read that context, install the collection from it the way the
Containerfile's galaxy stage does (from /build, i.e. the context's _build/), and run the
introspection script of the builder stage over the installed collections, offline.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)


def _load(path):
    with open(os.path.join(REPO, path)) as f:
        return yaml.safe_load(f)


def _pins(path):
    pins = {}
    with open(os.path.join(REPO, path)) as f:
        for line in f:
            m = re.match(r"^\s*([A-Za-z0-9_.-]+)==(\S+)", line)
            if m:
                pins[m.group(1).lower()] = m.group(2)
    return pins


def _run(argv, cwd):
    # As in a fresh image: no collections reachable through PYTHONPATH, the caller's collections path or
    # the caller's ansible.cfg (make links this checkout into .collections and points ANSIBLE_CONFIG at a
    # file naming it, so ansible-galaxy would find hcp.etcd "installed" and install nothing).
    hidden = ("PYTHONPATH", "ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS", "ANSIBLE_CONFIG")
    env = dict((k, v) for k, v in os.environ.items() if k not in hidden)
    proc = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert proc.returncode == 0, "%s failed (rc %d):\n%s" % (" ".join(argv), proc.returncode, proc.stdout)
    return proc.stdout


def _kubernetes_core_path():
    import ansible_collections

    for base in ansible_collections.__path__:
        if os.path.isfile(os.path.join(base, "kubernetes", "core", "MANIFEST.json")):
            return os.path.join(base, "kubernetes", "core")
    raise AssertionError("kubernetes.core is not installed in the venv")


@pytest.fixture(scope="module")
def ee(tmp_path_factory):
    """A copy of the EE sources with a freshly built artifact, and the context ansible-builder creates from it."""
    src = tmp_path_factory.mktemp("ee-src")
    definition = _load("execution-environment.yml")
    shutil.copy(os.path.join(REPO, "execution-environment.yml"), str(src))
    for key in ("galaxy", "python", "system"):
        rel = definition["dependencies"].get(key)
        if isinstance(rel, str):
            os.makedirs(str(src / os.path.dirname(rel)), exist_ok=True)
            shutil.copy(os.path.join(REPO, rel), str(src / rel))
    for entry in definition.get("additional_build_files", []):
        out_dir = src / os.path.dirname(entry["src"])
        os.makedirs(str(out_dir), exist_ok=True)
        _run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(out_dir), REPO], REPO)
    _run([os.path.join(BIN, "ansible-builder"), "create", "--file", "execution-environment.yml",
          "--context", "context", "--output-filename", "Containerfile"], str(src))
    return {"definition": definition, "src": src, "context": src / "context", "build": src / "context" / "_build"}


def test_definition_is_schema_3_and_pinned_like_the_controller():
    definition = _load("execution-environment.yml")
    galaxy = _load("galaxy.yml")
    controller = _pins("requirements-dev.txt")
    ee_python = _pins(definition["dependencies"]["python"])
    assert definition["version"] == 3
    assert definition["dependencies"]["ansible_core"]["package_pip"] == "ansible-core==%s" % controller["ansible-core"]
    assert ee_python["kubernetes"] == controller["kubernetes"]
    artifact = "hcp-etcd-%s.tar.gz" % galaxy["version"]
    # The artifact copied into the context and the one installed are those of galaxy.yml's version.
    assert [os.path.basename(e["src"]) for e in definition["additional_build_files"]] == [artifact]
    collections = _load(definition["dependencies"]["galaxy"])["collections"]
    files = [c["name"] for c in collections if c.get("type") == "file"]
    assert files == ["%s/%s" % (definition["additional_build_files"][0]["dest"], artifact)]
    # kubernetes.core in the image is the version the tests of this repo run against.
    with open(os.path.join(_kubernetes_core_path(), "MANIFEST.json")) as f:
        tested = json.load(f)["collection_info"]["version"]
    assert [c.get("version") for c in collections if c["name"] == "kubernetes.core"] == [tested]


def test_context_installs_the_collection_kubernetes_core_and_python_requirements(ee):
    containerfile = (ee["context"] / "Containerfile").read_text()
    build = ee["build"]
    assert 'ARG EE_BASE_IMAGE="%s"' % ee["definition"]["images"]["base_image"]["name"] in containerfile
    refs = re.search(r'ARG ANSIBLE_INSTALL_REFS="([^"]*)"', containerfile).group(1).split()
    assert ee["definition"]["dependencies"]["ansible_core"]["package_pip"] in refs
    assert any(r.startswith("ansible-runner==") for r in refs)
    # galaxy stage: the context's _build is /build and the collections are installed from there.
    galaxy_stage = containerfile.split("FROM base AS galaxy", 1)[1].split("FROM base AS builder", 1)[0]
    assert "COPY _build /build" in galaxy_stage and "WORKDIR /build" in galaxy_stage
    assert re.search(r"ansible-galaxy collection install .*-r requirements.yml", galaxy_stage)
    collections = yaml.safe_load((build / "requirements.yml").read_text())["collections"]
    names = [c["name"] for c in collections]
    assert "kubernetes.core" in names
    artifact = [c["name"] for c in collections if c.get("type") == "file"][0]
    assert (build / artifact).is_file(), "%s is not in the build context" % artifact
    # builder stage: the user's python requirements are those of meta/ee-requirements.txt.
    assert (build / "requirements.txt").read_text() == (ee["src"] / ee["definition"]["dependencies"]["python"]).read_text()
    assert "--user-pip=requirements.txt" in containerfile
    assert "kubernetes==" in (build / "requirements.txt").read_text()


def test_artifact_in_the_context_installs_hcp_etcd_and_introspects_to_the_kubernetes_client(ee, tmp_path):
    build = ee["build"]
    collections = yaml.safe_load((build / "requirements.yml").read_text())["collections"]
    local = [c for c in collections if c.get("type") == "file"]
    only_local = tmp_path / "requirements-local.yml"
    only_local.write_text(yaml.safe_dump({"collections": local}))
    dest = tmp_path / "collections"
    # As the galaxy stage does: from /build (the context's _build), the relative path must resolve.
    _run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--no-deps", "-r", str(only_local), "-p", str(dest)], str(build))
    installed = dest / "ansible_collections" / "hcp" / "etcd"
    manifest = json.loads((installed / "MANIFEST.json").read_text())["collection_info"]
    assert (manifest["namespace"], manifest["name"], manifest["version"]) == ("hcp", "etcd", _load("galaxy.yml")["version"])
    for rel in ("plugins/inventory/hosted_clusters.py", "plugins/modules/etcd_snapshot.py", "roles/backup/tasks/main.yml",
                "roles/restore/tasks/main.yml", "playbooks/backup.yml", "playbooks/restore.yml", "meta/runtime.yml"):
        assert (installed / rel).is_file(), "%s missing from the artifact" % rel
    assert not (installed / ".venv").exists() and not (installed / ".cache").exists()
    # kubernetes.core as the galaxy stage would fetch it (same version, see the first test).
    os.symlink(os.path.dirname(_kubernetes_core_path()), str(dest / "ansible_collections" / "kubernetes"))
    # The builder stage's introspection, with the context's own script and files.
    argv = [sys.executable, str(build / "scripts" / "introspect.py"), "introspect", "--user-pip=requirements.txt"]
    if (build / "exclude-bindep.txt").exists():
        argv.append("--exclude-bindep-reqs=exclude-bindep.txt")
    out = yaml.safe_load(_run(argv + [str(dest)], str(build)))
    python = [line.split("#")[0].strip() for line in out["python"]]
    origins = " ".join(out["python"])
    assert "kubernetes==%s" % _pins("requirements-dev.txt")["kubernetes"] in python
    assert "from collection hcp.etcd" in origins and "from collection kubernetes.core" in origins
    assert not [p for p in python if re.match(r"^ansible(-core)?\b", p)], "ansible must not be pip-installed twice: %s" % python
    # kubectl/oc packages of kubernetes.core's bindep.txt are excluded (absent from CentOS Stream 9).
    assert out["system"] == []


def test_the_collection_declares_ranges_not_pins_and_builder_finds_them():
    # Pins in the artifact's requirements.txt would be pushed into every execution environment that
    # includes hcp.etcd (ansible-builder introspection); the test pins live in requirements-dev.txt.
    declared = [line.strip() for line in open(os.path.join(REPO, "requirements.txt")) if line.strip() and not line.startswith("#")]
    assert declared and not [line for line in declared if "==" in line], declared
    assert _load("meta/execution-environment.yml")["dependencies"]["python"] == "requirements.txt"
    # the tested pins satisfy the declared ranges
    tested = _pins("requirements-dev.txt")
    for line in declared:
        name, low = re.match(r"^([A-Za-z0-9_.-]+)>=(\S+)$", line).groups()
        assert tuple(int(x) for x in tested[name.lower()].split(".")) >= tuple(int(x) for x in low.split("."))
