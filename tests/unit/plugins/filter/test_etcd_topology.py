# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""etcd_topology reads both StatefulSet shapes HyperShift has rendered: etcd settings as environment
variables (OpenShift 4.18 on; the miniature control plane's own manifest) and as flags in the etcd
container's command (OpenShift 4.14 to 4.17, written here from the published facts)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import os

import pytest
import yaml

from ansible_collections.hcp.etcd.plugins.filter import hcp_etcd

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "hcp", "etcd.yaml.in")


def env_shaped():
    """The StatefulSet the miniature control plane runs (tests/fixtures/hcp/etcd.yaml.in), rendered."""
    with open(FIXTURE) as handle:
        text = handle.read()
    for key, value in (("NS", "clusters-demo"), ("REPLICAS", "3"), ("IMAGE", "localhost/hcp-etcd/etcd:3.5"),
                       ("INITIAL_CLUSTER", "etcd-0=https://etcd-0.etcd-discovery.clusters-demo.svc:2380"),
                       ("DATA_SIZE", "8Gi"), ("SERVICE_ACCOUNT", "etcd-defrag-controller")):
        text = text.replace("@%s@" % key, value)
    return next(doc for doc in yaml.safe_load_all(text) if doc and doc.get("kind") == "StatefulSet")


def flag_shaped(quota="8589934592", token="etcd-cluster"):
    """The same StatefulSet as OpenShift 4.14 to 4.17 render it: no ETCD_* variables, flags in the command."""
    sts = copy.deepcopy(env_shaped())
    etcd = next(c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "etcd")
    etcd["env"] = [item for item in etcd["env"] if not item["name"].startswith("ETCD_")]
    flags = ["--data-dir=/var/lib/data", "--name=${HOSTNAME}", "--initial-cluster-token=%s" % token,
             "--initial-advertise-peer-urls=https://${HOSTNAME}.etcd-discovery.${NAMESPACE}.svc:2380",
             "--listen-client-urls=https://${POD_IP}:2379,https://localhost:2379", "--snapshot-count=10000"]
    if quota is not None:
        flags += ["--quota-backend-bytes", quota]
    etcd["command"] = ["/bin/sh", "-c", "/usr/bin/etcd " + " ".join(flags)]
    return sts


def test_env_shape_token_quota_and_members():
    topology = hcp_etcd.etcd_topology(env_shaped())
    assert topology["initial_cluster_token"] == "etcd-cluster"
    assert topology["quota_backend_bytes"] == 8 * 2 ** 30
    assert topology["member_names"] == ["etcd-0", "etcd-1", "etcd-2"]
    assert topology["volume_bytes"] == 8 * 2 ** 30
    assert topology["pod_security_context"]["fsGroup"] == 1001


def test_flag_shape_reads_the_same_settings_from_the_command():
    env_topology, flag_topology = hcp_etcd.etcd_topology(env_shaped()), hcp_etcd.etcd_topology(flag_shaped())
    assert flag_topology == env_topology
    other = hcp_etcd.etcd_topology(flag_shaped(quota="4294967296", token="tok-1"))
    assert other["quota_backend_bytes"] == 4 * 2 ** 30 and other["initial_cluster_token"] == "tok-1"


def test_etcd_defaults_when_neither_shape_sets_them():
    topology = hcp_etcd.etcd_topology(flag_shaped(quota=None, token="etcd-cluster"))
    assert topology["quota_backend_bytes"] == 2 * 2 ** 30  # etcd's own default


def test_container_setting_forms():
    setting = hcp_etcd.container_setting
    assert setting({"command": ["etcd", "--quota-backend-bytes=100"]}, "ETCD_QUOTA_BACKEND_BYTES", "--quota-backend-bytes") == "100"
    assert setting({"args": ["--quota-backend-bytes", "'200'"]}, "X", "--quota-backend-bytes") == "200"
    # the flag shadows the environment variable, as in etcd
    assert setting({"env": [{"name": "X", "value": "300"}], "command": ["etcd", "--q=1"]}, "X", "--q") == "1"
    assert setting({"env": [{"name": "X", "valueFrom": {}}]}, "X", "--q") is None
    assert setting({"command": ["etcd", "--quota-backend-bytes-extra=5"]}, "X", "--quota-backend-bytes") is None


def test_store_options_leave_empty_values_to_the_environment():
    from ansible_collections.hcp.etcd.plugins.filter.hcp_etcd import store_options

    assert store_options("s3://b/hcp", "https://minio:9000", "", "", True, compression="zstd", age_recipients=[]) == {
        "store": "s3://b/hcp", "endpoint_url": "https://minio:9000", "compression": "zstd", "validate_certs": True}
    url = "s3://b/hcp/clusters/demo/20261130T030000Z/etcd-snapshot.db"
    assert store_options(url, "", "eu-1", "/ca.pem", False, bucket_only=True, age_identity_file="") == {
        "store": "s3://b", "region": "eu-1", "ca_bundle": "/ca.pem", "validate_certs": False}
    # a local snapshot path: no store, the module is not called
    assert store_options("/backups/etcd-snapshot.db", bucket_only=True)["store"] == "/backups/etcd-snapshot.db"


@pytest.mark.parametrize("setting, quota", [
    ("8589934592", 8 * 2 ** 30),
    ("0", 2 * 2 ** 30),      # etcd's default
    (None, 2 * 2 ** 30),
    ("-1", None),            # disabled: never exceeded
])
def test_backend_quota_reads_etcd_semantics(setting, quota):
    assert hcp_etcd.backend_quota(setting) == quota


def test_the_flag_wins_over_the_environment_as_in_etcd():
    container = {"command": ["etcd", "--quota-backend-bytes=4294967296"],
                 "env": [{"name": "ETCD_QUOTA_BACKEND_BYTES", "value": "8589934592"}]}
    assert hcp_etcd.container_setting(container, "ETCD_QUOTA_BACKEND_BYTES", "--quota-backend-bytes") == "4294967296"
