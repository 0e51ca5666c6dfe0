# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hcp.etcd.hosted_clusters over a faked Kubernetes API, through ansible's own InventoryManager.

The plugin is loaded by name from an inventory file, exactly as ansible-inventory does (option
definitions from its DOCUMENTATION and kubernetes.core's doc fragment); only get_api_client, the
kubernetes.core entry point to the API, is replaced.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import os
import sys

import pytest

import ansible_collections.hcp.etcd as hcp_etcd
from ansible.errors import AnsibleError
from ansible.inventory.data import InventoryData
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader, inventory_loader
from ansible.template import Templar
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
from ansible.utils.display import Display
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.exceptions import ForbiddenError, ResourceNotFoundError

COLLECTIONS_ROOT = os.path.abspath(os.path.join(list(hcp_etcd.__path__)[0], "..", "..", ".."))


def _collection_modules():
    return dict((k, v) for k, v in sys.modules.items() if k == "ansible_collections" or k.startswith("ansible_collections."))


@pytest.fixture
def hosted_clusters():
    """The plugin module under ansible's collection loader, as ansible-inventory sets it up.

    The other unit tests import ansible_collections.* as plain packages; their modules are put
    aside while the loader is installed and put back afterwards.
    """
    saved = _collection_modules()
    for name in saved:
        del sys.modules[name]
    init_plugin_loader([COLLECTIONS_ROOT])
    inventory_loader._clear_caches()  # a plugin class cached by an earlier test would use that test's module
    try:
        yield importlib.import_module("ansible_collections.hcp.etcd.plugins.inventory.hosted_clusters")
    finally:
        _AnsibleCollectionFinder._remove()
        for name in _collection_modules():
            del sys.modules[name]
        sys.modules.update(saved)


def hosted_cluster(namespace, name, policy="SingleReplica", management="Managed", labels=None, deleting=False):
    meta = {"name": name, "namespace": namespace, "labels": labels or {}}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-26T05:00:00Z"
    spec = {"etcd": {"managementType": management}, "platform": {"type": "None"}}
    if policy is not None:
        spec["controllerAvailabilityPolicy"] = policy
    return {"apiVersion": "hypershift.openshift.io/v1beta1", "kind": "HostedCluster", "metadata": meta, "spec": spec}


class FakeList(object):
    def __init__(self, items):
        self.items = items

    def to_dict(self):
        return {"apiVersion": "hypershift.openshift.io/v1beta1", "kind": "HostedClusterList", "items": list(self.items)}


class FakeClient(object):
    """The two calls of kubernetes.core's K8SClient the plugin makes: resource() and get()."""

    def __init__(self, objects, crd=True, forbidden=()):
        self.objects = objects
        self.crd = crd
        self.forbidden = set(forbidden)
        self.auth = None
        self.resources = []
        self.gets = []

    def resource(self, kind, api_version):
        self.resources.append((kind, api_version))
        if not self.crd:
            raise ResourceNotFoundError("No matches found for {'api_version': '%s', 'kind': '%s'}" % (api_version, kind))
        return "hostedclusters-resource"

    def get(self, resource, namespace=None):
        assert resource == "hostedclusters-resource"
        self.gets.append(namespace)
        if namespace in self.forbidden:
            raise ForbiddenError(ApiException(status=403, reason="Forbidden"))
        return FakeList([o for o in self.objects if namespace is None or o["metadata"]["namespace"] == namespace])


FLEET = [
    hosted_cluster("clusters", "prod-a", policy="HighlyAvailable", labels={"tier": "prod"}),
    hosted_cluster("clusters", "dev", policy="SingleReplica", labels={"tier": "dev"}),
    hosted_cluster("clusters-prod", "my.cluster", policy=None),  # HyperShift's default policy
    hosted_cluster("hcp-ext", "ext", policy="SingleReplica", management="Unmanaged"),
    hosted_cluster("clusters", "leaving", deleting=True),
]


@pytest.fixture
def fake_api(monkeypatch, hosted_clusters):
    state = {}

    def install(objects=None, **kwargs):
        client = FakeClient(FLEET if objects is None else objects, **kwargs)

        def get_api_client(module=None, **auth):
            assert module is None
            client.auth = auth
            return client

        monkeypatch.setattr(hosted_clusters, "get_api_client", get_api_client)
        state["client"] = client
        return client

    return install


def load(tmp_path, text, name="hosted_clusters.yml"):
    path = tmp_path / name
    path.write_text(text)
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(path)], parse=False)
    inventory.parse_sources(cache=False)
    return inventory


def load_strict(tmp_path, text, name="hosted_clusters.yml"):
    """The plugin's parse() as the loader gets it, so its error surfaces (InventoryManager only warns)."""
    path = tmp_path / name
    path.write_text(text)
    plugin = inventory_loader.get("hcp.etcd.hosted_clusters")
    assert plugin.verify_file(str(path))
    data = InventoryData()
    plugin.parse(data, DataLoader(), str(path), cache=False)
    return data


def names(hosts):
    return sorted(h.name for h in hosts)


def test_one_host_per_hosted_cluster_with_the_role_inputs_and_groups(tmp_path, fake_api):
    client = fake_api()
    inventory = load(tmp_path, "plugin: hcp.etcd.hosted_clusters\n")
    assert client.resources == [("HostedCluster", "hypershift.openshift.io/v1beta1")]
    assert client.gets == [None]  # all namespaces: one cluster-wide list
    assert names(inventory.get_hosts("all")) == ["clusters-prod/my.cluster", "clusters/dev", "clusters/prod-a", "hcp-ext/ext"]
    groups = inventory.get_groups_dict()
    assert sorted(groups["hosted_clusters"]) == names(inventory.get_hosts("all"))
    assert groups["ns_clusters"] == ["clusters/dev", "clusters/prod-a"]
    assert groups["ns_clusters_prod"] == ["clusters-prod/my.cluster"]
    assert groups["ns_hcp_ext"] == ["hcp-ext/ext"]
    assert sorted(groups["policy_highlyavailable"]) == ["clusters-prod/my.cluster", "clusters/prod-a"]
    assert sorted(groups["policy_singlereplica"]) == ["clusters/dev", "hcp-ext/ext"]
    assert sorted(groups["etcd_managed"]) == ["clusters-prod/my.cluster", "clusters/dev", "clusters/prod-a"]
    assert groups["etcd_unmanaged"] == ["hcp-ext/ext"]
    assert "clusters/leaving" not in groups["all"] + groups["ungrouped"]
    # Host patterns operators type: the host name itself and the groups.
    assert names(inventory.get_hosts("clusters/prod-a")) == ["clusters/prod-a"]
    assert names(inventory.get_hosts("clusters-prod/my.cluster,hcp-ext/ext")) == ["clusters-prod/my.cluster", "hcp-ext/ext"]
    assert names(inventory.get_hosts("ns_clusters:&policy_singlereplica")) == ["clusters/dev"]

    hostvars = inventory.get_host("clusters-prod/my.cluster").get_vars()
    assert hostvars["cluster_name"] == "my.cluster"
    assert hostvars["hosted_cluster_namespace"] == "clusters-prod"
    assert hostvars["control_plane_namespace"] == "clusters-prod-my-cluster"
    assert hostvars["availability_policy"] == "HighlyAvailable"
    assert hostvars["etcd_management_type"] == "Managed"
    assert hostvars["ansible_connection"] == "local"
    ext = inventory.get_host("hcp-ext/ext").get_vars()
    assert (ext["control_plane_namespace"], ext["availability_policy"], ext["etcd_management_type"]) == (
        "hcp-ext-ext", "SingleReplica", "Unmanaged")


def test_python_interpreter_is_a_template_the_play_renders_to_its_own_python(tmp_path, fake_api):
    fake_api()
    inventory = load(tmp_path, "plugin: hcp.etcd.hosted_clusters\n")
    hostvars = inventory.get_host("clusters/dev").get_vars()
    assert hostvars["ansible_python_interpreter"] == "{{ ansible_playbook_python }}"
    rendered = Templar(loader=DataLoader(), variables={"ansible_playbook_python": sys.executable}).template(
        hostvars["ansible_python_interpreter"])
    assert rendered == sys.executable


def test_namespaces_option_lists_each_namespace_once(tmp_path, fake_api):
    client = fake_api()
    inventory = load(tmp_path, "plugin: hcp.etcd.hosted_clusters\nnamespaces: [hcp-ext, clusters, hcp-ext]\n")
    assert client.gets == ["hcp-ext", "clusters"]
    assert names(inventory.get_hosts("all")) == ["clusters/dev", "clusters/prod-a", "hcp-ext/ext"]


def test_kubernetes_core_auth_options_reach_get_api_client(tmp_path, fake_api):
    client = fake_api()
    load(tmp_path, "plugin: hcp.etcd.hosted_clusters\nkubeconfig: /etc/mgmt.kubeconfig\ncontext: admin\nvalidate_certs: false\n")
    assert client.auth == {"kubeconfig": "/etc/mgmt.kubeconfig", "context": "admin", "validate_certs": False}
    client = fake_api()
    load(tmp_path, "plugin: hcp.etcd.hosted_clusters\n")
    # Nothing set: kubernetes.core falls back to K8S_AUTH_* / KUBECONFIG itself.
    assert client.auth == {}


def test_constructed_keyed_groups_from_labels(tmp_path, fake_api):
    fake_api()
    config = "plugin: hcp.etcd.hosted_clusters\nkeyed_groups:\n  - key: hosted_cluster_labels.tier | default('none')\n    prefix: tier\n"
    inventory = load(tmp_path, config)
    groups = inventory.get_groups_dict()
    assert groups["tier_prod"] == ["clusters/prod-a"]
    assert groups["tier_dev"] == ["clusters/dev"]
    assert sorted(groups["tier_none"]) == ["clusters-prod/my.cluster", "hcp-ext/ext"]


def test_not_a_management_cluster_is_an_error_that_says_so(tmp_path, fake_api):
    fake_api(crd=False)
    with pytest.raises(AnsibleError, match="no HostedCluster resource .* HyperShift management cluster"):
        load_strict(tmp_path, "plugin: hcp.etcd.hosted_clusters\n")


def test_forbidden_namespace_is_an_error_that_names_it(tmp_path, fake_api):
    fake_api(forbidden=["secret-ns"])
    with pytest.raises(AnsibleError, match="cannot list the HostedClusters of namespace secret-ns: 403"):
        load_strict(tmp_path, "plugin: hcp.etcd.hosted_clusters\nnamespaces: [clusters, secret-ns]\n")


def test_hosted_cluster_with_an_invalid_namespace_is_skipped_with_a_warning(
        tmp_path, fake_api, hosted_clusters, monkeypatch):
    fake_api([hosted_cluster("clusters", "x" * 60), hosted_cluster("clusters", "good", policy="SingleReplica")])
    warnings = []
    monkeypatch.setattr(Display, "warning", lambda self, msg, *args, **kwargs: warnings.append(msg))
    data = load_strict(tmp_path, "plugin: hcp.etcd.hosted_clusters\n")
    assert sorted(data.hosts) == ["clusters/good"]
    assert len(warnings) == 1 and "skipping HostedCluster clusters/" + "x" * 60 in warnings[0]
    assert "not a valid namespace name" in warnings[0]


def test_only_files_named_hosted_clusters_are_ours(tmp_path, fake_api, hosted_clusters):
    client = fake_api()
    plugin = hosted_clusters.InventoryModule()
    for name, ours in (("hosted_clusters.yml", True), ("prod.hosted_clusters.yaml", True), ("k8s.yml", False),
                       ("hosted_clusters.json", False)):
        path = tmp_path / name
        path.write_text("plugin: hcp.etcd.hosted_clusters\n")
        assert plugin.verify_file(str(path)) is ours, name
    assert client.gets == []


def test_group_names_are_valid_identifiers(hosted_clusters):
    assert hosted_clusters.group_name("ns_", "clusters-prod.eu") == "ns_clusters_prod_eu"
    assert hosted_clusters.host_groups(hosted_clusters.host_vars(hosted_cluster("a-b", "c", policy="HighlyAvailable"))) == [
        "hosted_clusters", "ns_a_b", "policy_highlyavailable", "etcd_managed"]


def _cached_config(tmp_path):
    return ("plugin: hcp.etcd.hosted_clusters\ncache: true\ncache_plugin: ansible.builtin.jsonfile\n"
            "cache_connection: %s\ncache_timeout: 600\n" % (tmp_path / "cache"))


def _parse(tmp_path, text, cache):
    path = tmp_path / "hosted_clusters.yml"
    path.write_text(text)
    plugin = inventory_loader.get("hcp.etcd.hosted_clusters")
    data = InventoryData()
    plugin.parse(data, DataLoader(), str(path), cache=cache)
    if hasattr(plugin, "update_cache_if_changed"):
        plugin.update_cache_if_changed()
    else:  # pragma: no cover - older ansible-core
        plugin.set_cache_plugin()
    return data


def test_with_cache_the_list_comes_from_the_cache_until_a_flush(tmp_path, fake_api):
    client = fake_api()
    text = _cached_config(tmp_path)
    first = _parse(tmp_path, text, cache=True)
    assert client.gets == [None]
    # the management cluster changed; the cached list is used, without an API call
    client.objects = [hosted_cluster("clusters", "new-one")]
    again = _parse(tmp_path, text, cache=True)
    assert client.gets == [None]
    assert sorted(again.hosts) == sorted(first.hosts) and "clusters/prod-a" in again.hosts
    # --flush-cache (cache=False): listed again, and the cache now holds the new list
    flushed = _parse(tmp_path, text, cache=False)
    assert client.gets == [None, None] and sorted(flushed.hosts) == ["clusters/new-one"]
    assert sorted(_parse(tmp_path, text, cache=True).hosts) == ["clusters/new-one"] and client.gets == [None, None]


def test_without_cache_every_parse_lists_the_hosted_clusters(tmp_path, fake_api):
    client = fake_api()
    for _attempt in range(2):
        load_strict(tmp_path, "plugin: hcp.etcd.hosted_clusters\n")
    assert client.gets == [None, None]
