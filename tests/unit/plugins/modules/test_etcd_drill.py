# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drill's judgement: Kubernetes objects decoded as kube-apiserver stores them, comparisons with the sidecar."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.hcp.etcd.plugins.modules import etcd_drill


def field(number, payload):
    """A length-delimited protobuf field (lengths below 128 only)."""
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


def protobuf_object(api_version, kind, raw=b"\x0a\x04name"):
    type_meta = field(1, api_version.encode()) + field(2, kind.encode())
    # runtime.Unknown: 1 TypeMeta, 2 raw object, 3 contentEncoding, 4 contentType; a varint field skipped too
    return b"k8s\x00" + field(1, type_meta) + field(2, raw) + b"\x28\x01" + field(4, b"")


def test_decode_protobuf_json_and_encrypted_values():
    assert etcd_drill.decode_object(protobuf_object("v1", "ConfigMap")) == "v1/ConfigMap"
    assert etcd_drill.decode_object(protobuf_object("apps/v1", "Deployment")) == "apps/v1/Deployment"
    crd = json.dumps({"apiVersion": "hypershift.openshift.io/v1beta1", "kind": "HostedCluster", "metadata": {}}).encode()
    assert etcd_drill.decode_object(crd) == "hypershift.openshift.io/v1beta1/HostedCluster"
    assert etcd_drill.decode_object(b"k8s:enc:aescbc:v1:key1:\x00\x01") == "encrypted"


@pytest.mark.parametrize("value", [b"k8s\x00" + field(1, field(1, b"v1")), b"k8s\x00\xff", b"{}", b"plain text", b"\x00\x01"])
def test_undecodable_values_are_counted(value):
    result = etcd_drill.sample_objects([("/registry/x", value)])
    assert result["undecodable"] == 1 and result["undecodable_keys"] == ["/registry/x"] and result["decoded"] == 0


def test_sample_and_verdict():
    values = [("/registry/configmaps/a/b", protobuf_object("v1", "ConfigMap")),
              ("/registry/secrets/a/b", b"k8s:enc:aescbc:v1:key1:zzz")]
    objects = etcd_drill.sample_objects(values)
    assert objects["decoded"] == 1 and objects["encrypted"] == 1 and objects["kinds"] == ["v1/ConfigMap"]
    sidecar = {"revision": 1121, "kv_count": 209, "kv_hash": 42}
    checks = etcd_drill.compare(sidecar, 1121, 209, 42)
    ok, line = etcd_drill.verdict_line("b", "3.5.35", checks, objects)
    assert ok and line.endswith(": OK") and "revision 1121 = sidecar, keys 209 = sidecar, hashkv 42 = sidecar" in line
    ok, line = etcd_drill.verdict_line("b", "3.5.35", etcd_drill.compare(sidecar, 1121, 208, 43), objects)
    assert not ok and "keys 208 != sidecar 209" in line and "hashkv 43 != sidecar 42" in line and line.endswith("FAIL")
    # an older backup without kv_count/kv_hash: only the revision is compared, and the line says so
    ok, line = etcd_drill.verdict_line("b", "3.5.35", etcd_drill.compare({"revision": 7}, 7, 1, 2), objects)
    assert ok and "not recorded by the backup" in line
    # an undecodable Kubernetes value fails the drill
    bad = etcd_drill.sample_objects(values + [("/registry/pods/x/y", b"garbage")])
    assert not etcd_drill.verdict_line("b", "3.5.35", checks, bad)[0]
