# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one-run read of a HostedCluster and its control plane: what is read where, and how missing or
forbidden objects come back."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.hcp.etcd.plugins.module_utils.etcd_module import EtcdModuleError
from ansible_collections.hcp.etcd.plugins.modules import hosted_control_plane_info as info


class Found(object):
    def __init__(self, data):
        self.data = data

    def to_dict(self):
        return self.data


class FakeClient(object):
    """Objects by (kind, namespace, name); a list is every object of the kind in the namespace."""

    def __init__(self, objects, forbidden=()):
        self.objects = objects
        self.forbidden = set(forbidden)
        self.reads = []

    def resource(self, kind, api_version):
        return (kind, api_version)

    def get(self, resource, name=None, namespace=None):
        kind = resource[0]
        self.reads.append((kind, namespace, name))
        if kind in self.forbidden:
            raise info.ForbiddenError(None)
        if name is None:
            return Found({"items": [o for (k, ns, _n), o in sorted(self.objects.items()) if k == kind and ns == namespace]})
        if (kind, namespace, name) not in self.objects:
            raise info.NotFoundError(None)
        return Found(self.objects[(kind, namespace, name)])


def obj(name, **extra):
    data = {"metadata": {"name": name}}
    data.update(extra)
    return data


CONTROL_PLANE = {
    ("HostedCluster", "clusters", "my.cluster"): obj("my.cluster", spec={"etcd": {"managementType": "Managed"}}),
    ("HostedControlPlane", "clusters-my-cluster", "my-cluster"): obj("my-cluster"),
    ("StatefulSet", "clusters-my-cluster", "etcd"): obj("etcd", spec={"replicas": 3}),
    ("Deployment", "clusters-my-cluster", "kube-apiserver"): obj("kube-apiserver"),
    ("Deployment", "clusters-my-cluster", "openshift-apiserver"): obj("openshift-apiserver"),
    ("Deployment", "other-namespace", "kube-apiserver"): obj("kube-apiserver"),
    ("PersistentVolumeClaim", "clusters-my-cluster", "data-etcd-0"): obj("data-etcd-0"),
    ("ConfigMap", "clusters-my-cluster", "hcp-etcd-restore"): obj("hcp-etcd-restore", data={"phase": "started"}),
}


@pytest.fixture(autouse=True)
def dynamic_exceptions(monkeypatch):
    """The module's exception names as plain classes (the client's need a real HTTP response)."""

    class NotFound(Exception):
        pass

    class Forbidden(Exception):
        def summary(self):
            return "403 Forbidden"

    monkeypatch.setattr(info, "NotFoundError", NotFound)
    monkeypatch.setattr(info, "ResourceNotFoundError", NotFound)
    monkeypatch.setattr(info, "ForbiddenError", Forbidden)


def test_reads_the_control_plane_in_its_namespace():
    client = FakeClient(CONTROL_PLANE)
    result = info.read_control_plane(client, "my.cluster", "clusters", ["hcp-etcd-restore", "absent"])
    assert result["control_plane_namespace"] == "clusters-my-cluster"
    assert result["hosted_cluster"]["metadata"]["name"] == "my.cluster"
    assert [h["metadata"]["name"] for h in result["hosted_control_planes"]] == ["my-cluster"]
    assert result["statefulset"]["spec"]["replicas"] == 3
    # only the control-plane namespace's Deployments
    assert [d["metadata"]["name"] for d in result["deployments"]] == ["kube-apiserver", "openshift-apiserver"]
    assert [p["metadata"]["name"] for p in result["persistent_volume_claims"]] == ["data-etcd-0"]
    assert result["recovery_jobs"] == [] and result["forbidden"] == []
    assert result["config_maps"] == {"hcp-etcd-restore": CONTROL_PLANE[("ConfigMap", "clusters-my-cluster", "hcp-etcd-restore")]}
    assert all(kind != "Secret" for kind, _ns, _name in client.reads)


def test_an_active_recovery_job_is_returned():
    objects = dict(CONTROL_PLANE)
    objects[("Job", "clusters-my-cluster", "etcd-recovery")] = obj("etcd-recovery", status={"active": 1})
    result = info.read_control_plane(FakeClient(objects), "my.cluster", "clusters", [])
    assert result["recovery_jobs"] == [objects[("Job", "clusters-my-cluster", "etcd-recovery")]]


def test_an_unknown_hosted_cluster_reads_nothing_else():
    client = FakeClient(CONTROL_PLANE)
    result = info.read_control_plane(client, "nosuch", "clusters", ["hcp-etcd-restore"])
    assert result["hosted_cluster"] is None
    assert result["control_plane_namespace"] == ""
    assert result["statefulset"] is None and result["deployments"] == [] and result["config_maps"] == {}
    assert client.reads == [("HostedCluster", "clusters", "nosuch")]


def test_missing_objects_come_back_empty():
    objects = {k: v for k, v in CONTROL_PLANE.items() if k[0] == "HostedCluster"}
    result = info.read_control_plane(FakeClient(objects), "my.cluster", "clusters", ["hcp-etcd-restore"])
    assert result["statefulset"] is None
    assert result["hosted_control_planes"] == [] and result["deployments"] == [] and result["persistent_volume_claims"] == []


def test_a_forbidden_read_of_the_control_plane_comes_back_empty_and_named():
    client = FakeClient(CONTROL_PLANE, forbidden={"StatefulSet", "HostedControlPlane"})
    result = info.read_control_plane(client, "my.cluster", "clusters", [])
    assert result["statefulset"] is None and result["hosted_control_planes"] == []
    assert result["forbidden"] == ["list HostedControlPlane in clusters-my-cluster", "get StatefulSet in clusters-my-cluster"]
    assert [d["metadata"]["name"] for d in result["deployments"]] == ["kube-apiserver", "openshift-apiserver"]


def test_a_hosted_cluster_the_credentials_may_not_read_names_the_fix():
    with pytest.raises(EtcdModuleError) as err:
        info.read_control_plane(FakeClient(CONTROL_PLANE, forbidden={"HostedCluster"}), "my.cluster", "clusters", [])
    assert "may not read HostedCluster my.cluster in namespace clusters" in str(err.value)
    assert "docs/rbac.yml" in str(err.value)


class VersionAnswers(object):
    """A module whose transport answers ``etcdctl version`` per member: an exception, or (rc, stdout)."""

    def __init__(self, answers):
        self.answers = answers
        self.asked = []

    def transport(self, namespace, pod, container, timeout=None, retries=None):
        self.asked.append((namespace, pod, container, retries))
        answer = self.answers.get(pod, outer_error(pod))

        class Transport(object):
            def exec(self, argv, stdin=None, timeout=None, idempotent=False):
                assert argv == ["etcdctl", "version"]
                if isinstance(answer, Exception):
                    raise answer
                return answer[0], answer[1], b""

        return Transport()


def outer_error(pod):
    from ansible_collections.hcp.etcd.plugins.module_utils.pod_transport import PodTransportError

    return PodTransportError("pod %s not found" % pod)


def test_the_running_version_comes_from_the_first_member_that_answers():
    mod = VersionAnswers({"etcd-0": outer_error("etcd-0"), "etcd-1": (0, b"etcdctl version: 3.5.16\nAPI version: 3.5\n")})
    assert info.running_etcd_version(mod, "clusters-my-cluster", {"spec": {"replicas": 3}}) == ("3.5.16", "etcd-1")
    # etcd-0 is down (the usual case of a restore), so etcd-1 is asked; etcd-2 is not; no retries
    assert mod.asked == [("clusters-my-cluster", "etcd-0", "etcd", 1), ("clusters-my-cluster", "etcd-1", "etcd", 1)]


def test_no_running_version_when_no_member_answers():
    mod = VersionAnswers({"etcd-0": (1, b""), "etcd-1": (126, b"permission denied"), "etcd-2": outer_error("etcd-2")})
    assert info.running_etcd_version(mod, "ns", {"spec": {"replicas": 3}}) == ("", "")
    assert [pod for _ns, pod, _c, _r in mod.asked] == ["etcd-0", "etcd-1", "etcd-2"]
    assert info.running_etcd_version(VersionAnswers({}), "ns", {"spec": {"replicas": 0}}) == ("", "")


def test_node_pools_are_those_of_the_hosted_cluster_and_read_only_when_asked():
    objects = dict(CONTROL_PLANE)
    objects[("NodePool", "clusters", "mine")] = obj("mine", spec={"clusterName": "my.cluster"})
    objects[("NodePool", "clusters", "theirs")] = obj("theirs", spec={"clusterName": "other"})
    objects[("NodePool", "elsewhere", "mine-too")] = obj("mine-too", spec={"clusterName": "my.cluster"})
    client = FakeClient(objects)
    found = info.read_control_plane(client, "my.cluster", "clusters", [], node_pools=True)
    assert [p["metadata"]["name"] for p in found["node_pools"]] == ["mine"]
    client = FakeClient(objects)
    assert info.read_control_plane(client, "my.cluster", "clusters", [])["node_pools"] == []
    assert [r for r in client.reads if r[0] == "NodePool"] == []
