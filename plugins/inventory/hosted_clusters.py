# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: hosted_clusters
short_description: HyperShift HostedClusters of a management cluster as inventory hosts
version_added: 0.1.0
author:
  - hcp.etcd maintainers (@hcp-etcd)
description:
  - Lists the C(HostedCluster) objects (C(hypershift.openshift.io/v1beta1)) of a management cluster and makes
    one inventory host per hosted cluster, so the hcp.etcd playbooks back up or restore a whole fleet in one run
    (C(ansible-playbook -i hosted_clusters.yml hcp.etcd.backup -e hcp_targets=all)).
  - The host name is C(<namespace>/<name>) of the HostedCluster (for example C(clusters/prod-a)), unique on the
    management cluster even when two namespaces hold a HostedCluster of the same name, and the same text
    C(oc get hostedcluster -A) shows. Use it with C(--limit clusters/prod-a) or C(-e hcp_targets=clusters/prod-a).
  - Every host runs on the controller (C(ansible_connection=local), C(ansible_python_interpreter) set to the
    Python of ansible-playbook) and carries the host variables C(cluster_name), C(hosted_cluster_namespace),
    C(control_plane_namespace), C(availability_policy) and C(etcd_management_type); the first two are the inputs
    of the C(hcp.etcd.backup) and C(hcp.etcd.restore) roles.
  - "Groups: C(hosted_clusters) (every host), C(ns_<namespace>) (characters other than letters, digits and
    C(_) become C(_)), C(policy_highlyavailable) / C(policy_singlereplica) from
    C(spec.controllerAvailabilityPolicy), and C(etcd_managed) / C(etcd_unmanaged) from C(spec.etcd.managementType)."
  - HostedClusters being deleted (with a C(deletionTimestamp)) are left out, and so is, with a warning that
    names it, a HostedCluster whose control-plane namespace name would not be a valid namespace name (the
    others are still listed).
  - The connection options are those of kubernetes.core; when none is set in the inventory file, the
    C(K8S_AUTH_*) environment variables, then C(KUBECONFIG) and C(~/.kube/config) are used, like kubernetes.core's
    modules do. The inventory file name must end with C(hosted_clusters.yml) or C(hosted_clusters.yaml).
  - With O(cache=true) the list of HostedClusters is kept in the inventory cache (O(cache_plugin),
    O(cache_timeout)) and read from there until it expires, so that a large fleet or a frequent AWX inventory
    sync does not list them from the management cluster every time; C(ansible-inventory --flush-cache) or
    C(--flush-cache) on the playbook lists them again. Off by default.
options:
  plugin:
    description: Marks the file as an inventory source of this plugin.
    type: str
    required: true
    choices: [hcp.etcd.hosted_clusters]
  namespaces:
    description:
      - Namespaces whose HostedClusters are listed. Empty lists the HostedClusters of all namespaces, which needs
        the right to list them cluster-wide.
    type: list
    elements: str
    default: []
  api_version:
    description: API version of the HostedCluster resource.
    type: str
    default: hypershift.openshift.io/v1beta1
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
requirements:
  - python >= 3.9
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
# hosted_clusters.yml: every HostedCluster of the management cluster in $K8S_AUTH_KUBECONFIG / $KUBECONFIG.
plugin: hcp.etcd.hosted_clusters

# ---
# hosted_clusters.yml: the list kept for 10 minutes in a JSON file cache (AWX syncs, large fleets).
# plugin: hcp.etcd.hosted_clusters
# cache: true
# cache_plugin: ansible.builtin.jsonfile
# cache_connection: ~/.cache/hcp-etcd-inventory
# cache_timeout: 600

# ---
# hosted_clusters.yml: two namespaces only, explicit kubeconfig and context, plus a group of the
# HostedClusters labelled tier=prod made from the labels with the constructed options.
# plugin: hcp.etcd.hosted_clusters
# namespaces: [clusters, clusters-prod]
# kubeconfig: /etc/hcp-etcd/management.kubeconfig
# context: mgmt-admin
# keyed_groups:
#   - key: hosted_cluster_labels.tier | default('none')
#     prefix: tier

# Use it:
#   ansible-inventory -i hosted_clusters.yml --graph
#   ansible-playbook -i hosted_clusters.yml hcp.etcd.backup -e hcp_targets=all --forks 4
#   ansible-playbook -i hosted_clusters.yml hcp.etcd.backup -e hcp_targets=policy_highlyavailable
#   ansible-playbook -i hosted_clusters.yml hcp.etcd.restore -e hcp_targets=clusters/prod-a \
#     -e snapshot=/backups/clusters/prod-a/20261126T030000Z/etcd-snapshot.db -e confirm=true
"""

import re

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible_collections.hcp.etcd.plugins.module_utils.etcd_cli import EtcdCliError, control_plane_namespace

try:
    from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException
    from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError

    K8S_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported when the inventory is parsed
    AUTH_ARG_SPEC = {}
    K8S_IMPORT_ERROR = exc

try:
    from ansible.template import trust_as_template
except ImportError:  # ansible-core < 2.19 templates the variables of inventory plugins as they are

    def trust_as_template(value):
        return value

KIND = "HostedCluster"
ALL_GROUP = "hosted_clusters"
DEFAULT_POLICY = "HighlyAvailable"  # HyperShift's default of spec.controllerAvailabilityPolicy
DEFAULT_MANAGEMENT = "Managed"  # and of spec.etcd.managementType


def group_name(prefix, value):
    """``ns_`` + ``clusters-prod`` -> ``ns_clusters_prod``: letters, digits and ``_`` only."""
    return prefix + re.sub(r"[^A-Za-z0-9_]", "_", value)


def host_name(hosted_cluster_namespace, cluster_name):
    return "%s/%s" % (hosted_cluster_namespace, cluster_name)


def host_vars(hosted_cluster):
    """The host variables of one HostedCluster (a dict as the API returns it)."""
    meta = hosted_cluster.get("metadata") or {}
    spec = hosted_cluster.get("spec") or {}
    name = meta.get("name")
    namespace = meta.get("namespace")
    cp_namespace = control_plane_namespace(namespace, name)  # EtcdCliError when it is not a valid name
    return {
        "cluster_name": name,
        "hosted_cluster_namespace": namespace,
        "control_plane_namespace": cp_namespace,
        "availability_policy": spec.get("controllerAvailabilityPolicy") or DEFAULT_POLICY,
        "etcd_management_type": (spec.get("etcd") or {}).get("managementType") or DEFAULT_MANAGEMENT,
        "hosted_cluster_labels": dict(meta.get("labels") or {}),
        "ansible_connection": "local",
        # A template the play renders (ansible-core 2.19+ renders only templates marked as trusted).
        "ansible_python_interpreter": trust_as_template("{{ ansible_playbook_python }}"),
    }


def host_groups(variables):
    return [
        ALL_GROUP,
        group_name("ns_", variables["hosted_cluster_namespace"]),
        group_name("policy_", variables["availability_policy"].lower()),
        group_name("etcd_", variables["etcd_management_type"].lower()),
    ]


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "hcp.etcd.hosted_clusters"

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(
            ("hosted_clusters.yml", "hosted_clusters.yaml")
        )

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        # The inventory cache, as Ansible's own cacheable inventories use it: read it when caching is on and
        # the run did not ask for a flush (cache=False), and write it after a fresh list.
        use_cache = self.get_option("cache")
        key = self.get_cache_key(path)
        items = None
        if use_cache and cache:
            items = self._cache.get(key)
        if items is None:
            items = self._list_hosted_clusters()
            if use_cache:
                self._cache[key] = items
        for hosted_cluster in items:
            self._add(hosted_cluster)

    def _auth(self):
        auth = {}
        for name in AUTH_ARG_SPEC:
            try:
                value = self.get_option(name)
            except KeyError:
                continue
            if value is not None:
                auth[name] = value
        return auth

    def _list_hosted_clusters(self):
        if K8S_IMPORT_ERROR is not None:
            raise AnsibleError(
                "the hcp.etcd.hosted_clusters inventory needs the kubernetes Python client and the kubernetes.core "
                "collection: %s" % to_native(K8S_IMPORT_ERROR)
            )
        api_version = self.get_option("api_version")
        namespaces = []
        for namespace in self.get_option("namespaces") or []:
            if namespace not in namespaces:
                namespaces.append(namespace)
        try:
            client = get_api_client(**self._auth())
            resource = client.resource(KIND, api_version)
        except ResourceNotFoundError:
            raise AnsibleParserError(
                "no %s resource (%s) on this cluster: is it a HyperShift management cluster?" % (KIND, api_version)
            )
        except (CoreException, DynamicApiError) as exc:
            raise AnsibleParserError("cannot reach the management cluster: %s" % to_native(exc))
        except Exception as exc:  # connection refused, TLS, DNS: urllib3 and socket errors
            raise AnsibleParserError("cannot reach the management cluster: %s: %s" % (type(exc).__name__, to_native(exc)))
        items = []
        for namespace in namespaces or [None]:
            where = "namespace %s" % namespace if namespace else "all namespaces"
            try:
                found = client.get(resource, namespace=namespace)
            except DynamicApiError as exc:
                detail = exc.summary() if hasattr(exc, "summary") else exc
                raise AnsibleParserError("cannot list the %ss of %s: %s" % (KIND, where, to_native(detail)))
            found = found.to_dict() if hasattr(found, "to_dict") else found
            items.extend(found.get("items") or [])
        return sorted(items, key=lambda hc: (hc["metadata"]["namespace"], hc["metadata"]["name"]))

    def _add(self, hosted_cluster):
        meta = hosted_cluster.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            self.display.vvv("hosted_clusters: skipping %s/%s, being deleted" % (meta.get("namespace"), meta.get("name")))
            return
        try:
            variables = host_vars(hosted_cluster)
        except EtcdCliError as exc:  # one bad HostedCluster must not hide the rest of the fleet
            self.display.warning("hosted_clusters: skipping HostedCluster %s/%s: %s"
                                 % (meta.get("namespace"), meta.get("name"), to_native(exc)))
            return
        host = host_name(variables["hosted_cluster_namespace"], variables["cluster_name"])
        for group in host_groups(variables):
            self.inventory.add_group(group)
            self.inventory.add_host(host, group=group)
        for key, value in variables.items():
            self.inventory.set_variable(host, key, value)
        strict = self.get_option("strict")
        self._set_composite_vars(self.get_option("compose"), variables, host, strict=strict)
        self._add_host_to_composed_groups(self.get_option("groups"), variables, host, strict=strict)
        self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, host, strict=strict)
