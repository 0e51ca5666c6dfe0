# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.hcp.etcd.plugins.filter.without_managed_fields import without_managed_fields

HOSTED_CLUSTER = {
    "apiVersion": "hypershift.openshift.io/v1beta1",
    "kind": "HostedCluster",
    "metadata": {"name": "a", "namespace": "clusters", "labels": {"x": "y"},
                 "managedFields": [{"manager": "hypershift", "fieldsV1": {"f:spec": {}}}]},
    "spec": {"etcd": {"managementType": "Managed"}, "managedFields": "a spec field of that name stays"},
}


def test_drops_metadata_managed_fields_and_keeps_everything_else():
    original = copy.deepcopy(HOSTED_CLUSTER)
    result = without_managed_fields(HOSTED_CLUSTER)
    assert "managedFields" not in result["metadata"]
    assert result["metadata"] == {"name": "a", "namespace": "clusters", "labels": {"x": "y"}}
    assert result["spec"] == HOSTED_CLUSTER["spec"] and result["kind"] == "HostedCluster"
    assert HOSTED_CLUSTER == original, "the input must not change"


def test_a_list_of_objects_and_objects_without_managed_fields():
    plain = {"kind": "Secret", "metadata": {"name": "k"}, "data": {"key": "c2VjcmV0"}}
    assert without_managed_fields([HOSTED_CLUSTER, plain, {"kind": "NoMetadata"}]) == [
        dict(HOSTED_CLUSTER, metadata={"name": "a", "namespace": "clusters", "labels": {"x": "y"}}),
        plain,
        {"kind": "NoMetadata"},
    ]
    assert without_managed_fields([]) == []


def test_refuses_what_is_not_an_object():
    with pytest.raises(AnsibleFilterError, match="expected a Kubernetes object"):
        without_managed_fields(["not a dict"])
