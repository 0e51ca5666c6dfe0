#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: hosted_control_plane_info
short_description: Read a HostedCluster and the objects of its control plane that a backup or restore checks, in one run
version_added: 0.3.0
author:
  - hcp.etcd maintainers (@hcp-etcd)
description:
  - Reads the HostedCluster O(name) in O(namespace) and, in its control-plane namespace
    (C(<namespace>-<name>), dots as dashes), the HostedControlPlane objects, the etcd StatefulSet, the
    Deployments, the PersistentVolumeClaims, the Job C(etcd-recovery) and the ConfigMaps named in O(config_maps).
  - One module run with one API client instead of one M(kubernetes.core.k8s_info) run per object; each module run
    costs a Python start and the import of the Kubernetes client (about a second on a 2-core controller).
  - Read only. An object that does not exist comes back as V(null) (or an empty list); the caller decides what a
    missing object means. When the HostedCluster does not exist nothing else is read.
  - A read of the control plane that the credentials may not do comes back empty and is named in RV(forbidden), so
    that the caller can refuse with every missing permission at once. A HostedCluster the credentials may not read
    fails the module.
  - Secrets are never read.
options:
  name:
    description: Name of the HostedCluster.
    type: str
    required: true
  namespace:
    description: Namespace of the HostedCluster.
    type: str
    default: clusters
  config_maps:
    description: Names of ConfigMaps of the control-plane namespace to read (for example the restore's run record).
    type: list
    elements: str
    default: []
  node_pools:
    description: Also read the NodePools of the HostedCluster (those in O(namespace) whose C(spec.clusterName) is O(name)).
    type: bool
    default: false
  read_etcd_version:
    description:
      - Also read the version of the running etcd, C(etcdctl version) in container C(etcd) of the first member
        (C(etcd-0), C(etcd-1), ...) that answers. RV(etcd_version) stays empty when no member answers (all of them
        down or crash-looping, or no right to exec).
    type: bool
    default: false
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same in check mode.
  diff_mode:
    support: none
    description: Returns no diff.
"""

EXAMPLES = r"""
- name: Read the HostedCluster and its control plane
  hcp.etcd.hosted_control_plane_info:
    name: my-cluster
    namespace: clusters
    config_maps: [hcp-etcd-restore]
  register: cp

- name: Refuse an unknown HostedCluster
  ansible.builtin.assert:
    that: cp.hosted_cluster is not none
"""

RETURN = r"""
hosted_cluster:
  description: The HostedCluster, or V(null) when it does not exist.
  returned: always
  type: dict
  sample: {apiVersion: hypershift.openshift.io/v1beta1, kind: HostedCluster, metadata: {name: my-cluster, namespace: clusters}}
control_plane_namespace:
  description: The control-plane namespace, C(<namespace>-<name>) with dots as dashes; empty when the HostedCluster does not exist.
  returned: always
  type: str
  sample: clusters-my-cluster
hosted_control_planes:
  description: The HostedControlPlane objects of the control-plane namespace (HyperShift keeps one).
  returned: always
  type: list
  elements: dict
  sample: [{kind: HostedControlPlane, metadata: {name: my-cluster, namespace: clusters-my-cluster}}]
statefulset:
  description: The StatefulSet C(etcd), or V(null).
  returned: always
  type: dict
  sample: {kind: StatefulSet, metadata: {name: etcd, namespace: clusters-my-cluster}, spec: {replicas: 3}}
deployments:
  description: The Deployments of the control-plane namespace.
  returned: always
  type: list
  elements: dict
  sample: [{kind: Deployment, metadata: {name: kube-apiserver, namespace: clusters-my-cluster}}]
persistent_volume_claims:
  description: The PersistentVolumeClaims of the control-plane namespace.
  returned: always
  type: list
  elements: dict
  sample: [{kind: PersistentVolumeClaim, metadata: {name: data-etcd-0, namespace: clusters-my-cluster}}]
recovery_jobs:
  description: The Job C(etcd-recovery) (HyperShift's own member recovery) in a list, or an empty list.
  returned: always
  type: list
  elements: dict
  sample: []
node_pools:
  description: The NodePools of the HostedCluster (O(node_pools)); an empty list without O(node_pools).
  returned: always
  type: list
  elements: dict
  sample: [{kind: NodePool, metadata: {name: my-cluster-workers, namespace: clusters}, spec: {clusterName: my-cluster}}]
config_maps:
  description: Each ConfigMap of O(config_maps) that exists, by name.
  returned: always
  type: dict
  sample: {hcp-etcd-restore: {kind: ConfigMap, metadata: {name: hcp-etcd-restore}, data: {phase: started}}}
forbidden:
  description: The reads of the control plane the credentials may not do (their objects come back empty).
  returned: always
  type: list
  elements: str
  sample: [list HostedControlPlane in clusters-my-cluster]
etcd_version:
  description: The version of the running etcd (O(read_etcd_version)), or an empty string.
  returned: always
  type: str
  sample: 3.5.16
etcd_version_member:
  description: The member whose etcd answered O(read_etcd_version), or an empty string.
  returned: always
  type: str
  sample: etcd-0
api_server:
  description: URL of the API server read.
  returned: always
  type: str
  sample: https://api.mgmt.example.com:6443
"""

from ansible_collections.hcp.etcd.plugins.module_utils import etcd_cli
from ansible_collections.hcp.etcd.plugins.module_utils.etcd_module import (
    EtcdModule,
    EtcdModuleError,
)

try:
    from kubernetes.dynamic.exceptions import ForbiddenError, NotFoundError, ResourceNotFoundError
except ImportError:  # reported by AnsibleK8SModule.requires("kubernetes")
    ForbiddenError = NotFoundError = ResourceNotFoundError = Exception

HYPERSHIFT = "hypershift.openshift.io/v1beta1"


class Reader(object):
    """Reads objects as dicts, a missing one as None (a missing kind, such as a CRD not installed, too).
    A read the credentials may not do comes back empty too and is listed in ``forbidden``, so that the
    caller's access check names it with every other missing permission."""

    def __init__(self, client):
        self.client = client
        self.forbidden = []

    def get(self, api_version, kind, namespace, name=None):
        try:
            resource = self.client.resource(kind, api_version)
            found = self.client.get(resource, name=name, namespace=namespace)
        except (NotFoundError, ResourceNotFoundError):
            return None if name else []
        except ForbiddenError:
            self.forbidden.append("%s %s in %s" % ("get" if name else "list", kind, namespace))
            return None if name else []
        data = found.to_dict()
        return data if name else data.get("items") or []


def read_control_plane(client, name, namespace, config_maps, node_pools=False):
    reader = Reader(client)
    result = dict(
        control_plane_namespace="",
        hosted_cluster=reader.get(HYPERSHIFT, "HostedCluster", namespace, name),
        forbidden=reader.forbidden,
        hosted_control_planes=[],
        statefulset=None,
        deployments=[],
        persistent_volume_claims=[],
        recovery_jobs=[],
        node_pools=[],
        config_maps={},
    )
    if reader.forbidden:
        raise EtcdModuleError(
            "the credentials in use may not read HostedCluster %s in namespace %s. Bind them to the RBAC in "
            "docs/rbac.yml (ClusterRole hcp-etcd-hostedclusters) and rerun" % (name, namespace)
        )
    if result["hosted_cluster"] is None:
        return result
    cp = result["control_plane_namespace"] = etcd_cli.control_plane_namespace(namespace, name)
    job = reader.get("batch/v1", "Job", cp, "etcd-recovery")
    result.update(
        hosted_control_planes=reader.get(HYPERSHIFT, "HostedControlPlane", cp),
        statefulset=reader.get("apps/v1", "StatefulSet", cp, "etcd"),
        deployments=reader.get("apps/v1", "Deployment", cp),
        persistent_volume_claims=reader.get("v1", "PersistentVolumeClaim", cp),
        recovery_jobs=[job] if job else [],
    )
    if node_pools:
        result["node_pools"] = [pool for pool in reader.get(HYPERSHIFT, "NodePool", namespace)
                                if (pool.get("spec") or {}).get("clusterName") == name]
    for config_map in config_maps:
        found = reader.get("v1", "ConfigMap", cp, config_map)
        if found is not None:
            result["config_maps"][config_map] = found
    return result


def running_etcd_version(mod, namespace, statefulset):
    """``(version, member)`` of the first member whose etcd answers ``etcdctl version``, else ``("", "")``."""
    replicas = ((statefulset or {}).get("spec") or {}).get("replicas") or 0
    for index in range(replicas):
        member = "etcd-%d" % index
        try:
            rc, out, _err = mod.transport(namespace, member, "etcd", timeout=30, retries=1).exec(
                etcd_cli.tool_version_argv("etcdctl"))
        except Exception:  # pylint: disable=broad-except
            continue  # not running, crash-looping, gone, or no right to exec: ask the next one
        version = etcd_cli.parse_version(out) if rc == 0 else None
        if version:
            return etcd_cli.version_string(version), member
    return "", ""


def main():
    module = EtcdModule(
        dict(
            name=dict(type="str", required=True),
            namespace=dict(type="str", default="clusters"),
            config_maps=dict(type="list", elements="str", default=[]),
            node_pools=dict(type="bool", default=False),
            read_etcd_version=dict(type="bool", default=False),
        )
    )

    def run(mod):
        client = mod.api_client
        result = read_control_plane(client, mod.params["name"], mod.params["namespace"], mod.params["config_maps"],
                                    mod.params["node_pools"])
        result["etcd_version"], result["etcd_version_member"] = "", ""
        if mod.params["read_etcd_version"] and result["statefulset"]:
            result["etcd_version"], result["etcd_version_member"] = running_etcd_version(
                mod, result["control_plane_namespace"], result["statefulset"])
        mod.exit_json(changed=False, api_server=client.configuration.host, **result)

    module.run(run)


if __name__ == "__main__":
    main()
