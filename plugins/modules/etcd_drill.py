#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: etcd_drill
short_description: Prove that an etcd snapshot restores, in a throwaway single-member etcd
version_added: 0.1.0
author:
  - hcp.etcd maintainers (@hcp-etcd)
description:
  - Uploads a snapshot file (checked against its sidecar first) into a scratch pod that runs the etcd image of the
    control plane, restores it there into a new data directory, starts a single-member etcd on the pod's loopback,
    and compares what it serves with the sidecar, the way a restore would have to succeed on the day it is needed.
  - "Compared: the revision (equal to the sidecar's), and, when the backup recorded them, the number of keys and
    the C(endpoint hashkv) at that revision (equal to what the member the snapshot was taken from served). A sample
    of the values under C(/registry/) and C(/kubernetes.io/) is decoded as Kubernetes objects (protobuf C(k8s\\x00)
    envelope or JSON with C(apiVersion) and C(kind)); values the API server encrypted at rest (C(k8s:enc:)) are
    counted, not decoded."
  - Changes nothing outside the scratch pod; the playbook C(hcp.etcd.drill) creates and removes that pod.
options:
  namespace:
    description: Namespace of the scratch pod.
    type: str
    required: true
  pod:
    description: The scratch pod (etcd image, an empty writable C(work_dir)).
    type: str
    required: true
  container:
    description: Container of the scratch pod.
    type: str
    default: drill
  snapshot:
    description: The snapshot file on the controller; its sidecar C(<snapshot>.json) must sit beside it.
    type: path
    required: true
  work_dir:
    description: Directory in the pod for the snapshot and the restored data (removed first).
    type: str
    default: /var/lib/hcp-etcd-drill
  sample:
    description: How many values under each Kubernetes prefix to decode.
    type: int
    default: 50
  timeout:
    description: Seconds for each command; more for the upload and the restore of a large snapshot.
    type: int
    default: 600
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
attributes:
  check_mode:
    support: none
    description: Runs only outside check mode.
  diff_mode:
    support: none
    description: Returns no diff.
"""

EXAMPLES = r"""
- name: Restore the backup in a scratch etcd and compare it with its sidecar
  hcp.etcd.etcd_drill:
    namespace: clusters-demo
    pod: hcp-etcd-drill
    snapshot: /root/hcp-etcd-backups/clusters/demo/20261130T030000Z/etcd-snapshot.db
  register: drill

- name: Show the verdict
  ansible.builtin.debug:
    msg: "{{ drill.verdict_line }}"
"""

RETURN = r"""
verdict:
  description: C(OK) when every comparison held, C(FAIL) otherwise.
  returned: always
  type: str
  sample: OK
verdict_line:
  description: One line that says what was compared and found.
  returned: always
  type: str
  sample: >-
    drill of /root/hcp-etcd-backups/clusters/demo/20261130T030000Z/etcd-snapshot.db (sha256 9a16c09111612ac2): etcd 3.5.35
    started on the restored data, revision 1121 = sidecar, keys 209 = sidecar, hashkv 1176742966 = sidecar,
    0 Kubernetes objects decoded, 0 encrypted by the API server, 0 undecodable: OK
revision:
  description: Revision the restored etcd serves.
  returned: always
  type: int
  sample: 1121
kv_count:
  description: Keys the restored etcd serves at that revision.
  returned: always
  type: int
  sample: 209
kv_hash:
  description: C(endpoint hashkv) of the restored etcd at that revision.
  returned: always
  type: int
  sample: 1176742966
compared:
  description: Each comparison, C(what), C(expected) (from the sidecar), C(found) and C(ok).
  returned: always
  type: list
  elements: dict
  sample: [{"what": "revision", "expected": 1121, "found": 1121, "ok": true}]
objects:
  description: The decoded sample, C(decoded), C(encrypted) (by the API server), C(undecodable), and C(kinds) seen.
  returned: always
  type: dict
  sample: {"decoded": 50, "encrypted": 0, "undecodable": 0, "kinds": ["v1/ConfigMap", "v1/Pod"]}
etcd_version:
  description: Version of the etcd that served the restored data.
  returned: always
  type: str
  sample: 3.5.35
"""

import base64
import json
import time

from ansible_collections.hcp.etcd.plugins.module_utils import etcd_cli, snapshot_file
from ansible_collections.hcp.etcd.plugins.module_utils.etcd_module import EtcdModule, EtcdModuleError
from ansible_collections.hcp.etcd.plugins.module_utils.pod_transport import scaled_timeout

CLIENT_URL = "http://127.0.0.1:23790"
PEER_URL = "http://127.0.0.1:23800"
PREFIXES = ("/registry/", "/kubernetes.io/")
PROTOBUF_MAGIC = b"k8s\x00"


def _varint(data, pos):
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(data):
    """The length-delimited fields of a protobuf message: {number: bytes}; other wire types are skipped."""
    fields, pos = {}, 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, pos = _varint(data, pos)
            fields.setdefault(number, data[pos:pos + length])
            pos += length
        elif wire == 0:
            _skipped, pos = _varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError("wire type %d" % wire)
    return fields


def decode_object(value):
    """``apiVersion/kind`` of a value as kube-apiserver stores it; ``"encrypted"`` for a value it encrypted at rest.

    Raises ValueError for anything else. The protobuf envelope is the ``k8s\\x00`` magic, then
    ``runtime.Unknown`` whose field 1 is the TypeMeta (1: apiVersion, 2: kind) and field 2 the object."""
    if value.startswith(b"k8s:enc:"):
        return "encrypted"
    if value.startswith(PROTOBUF_MAGIC):
        unknown = _fields(value[len(PROTOBUF_MAGIC):])
        type_meta = _fields(unknown.get(1, b""))
        api_version, kind = type_meta.get(1, b"").decode("utf-8"), type_meta.get(2, b"").decode("utf-8")
        if not kind or 2 not in unknown:
            raise ValueError("protobuf envelope without a kind or an object")
        return "%s/%s" % (api_version, kind)
    obj = json.loads(value.decode("utf-8"))
    if not isinstance(obj, dict) or not obj.get("kind") or not obj.get("apiVersion"):
        raise ValueError("JSON without apiVersion and kind")
    return "%s/%s" % (obj["apiVersion"], obj["kind"])


def sample_objects(values):
    result = {"decoded": 0, "encrypted": 0, "undecodable": 0, "kinds": [], "undecodable_keys": []}
    kinds = set()
    for key, value in values:
        try:
            kind = decode_object(value)
        except (ValueError, IndexError, UnicodeDecodeError):
            result["undecodable"] += 1
            result["undecodable_keys"].append(key)
            continue
        if kind == "encrypted":
            result["encrypted"] += 1
        else:
            result["decoded"] += 1
            kinds.add(kind)
    result["kinds"] = sorted(kinds)
    return result


def compare(sidecar, revision, kv_count, kv_hash):
    """Each comparison with the sidecar; what the backup did not record is not compared."""
    checks = [{"what": "revision", "expected": sidecar.get("revision"), "found": revision}]
    for what, found in (("kv_count", kv_count), ("kv_hash", kv_hash)):
        if sidecar.get(what) is not None:
            checks.append({"what": what, "expected": sidecar[what], "found": found})
    for check in checks:
        check["ok"] = check["expected"] == check["found"]
    return checks


def verdict_line(name, etcd_version, checks, objects):
    labels = {"revision": "revision", "kv_count": "keys", "kv_hash": "hashkv"}
    parts = ["%s %s %s sidecar%s" % (labels[c["what"]], c["found"], "=" if c["ok"] else "!=",
                                     "" if c["ok"] else " " + str(c["expected"])) for c in checks]
    if len(checks) == 1:
        parts.append("keys and hashkv not recorded by the backup (not compared)")
    parts.append("%d Kubernetes objects decoded, %d encrypted by the API server, %d undecodable"
                 % (objects["decoded"], objects["encrypted"], objects["undecodable"]))
    ok = all(c["ok"] for c in checks) and not objects["undecodable"]
    return ok, "drill of %s: etcd %s started on the restored data, %s: %s" % (name, etcd_version, ", ".join(parts), "OK" if ok else "FAIL")


class Drill(object):
    """The scratch etcd inside the pod."""

    def __init__(self, mod, transport):
        self.mod, self.t = mod, transport

    def etcdctl(self, *args, **kwargs):
        return self.t.exec_ok(["env", "ETCDCTL_API=3", "etcdctl", "--endpoints=%s" % CLIENT_URL] + list(args),
                              what="etcdctl %s" % " ".join(args[:2]), timeout=kwargs.get("timeout", 120))

    def start(self, data_dir, log):
        script = ('nohup etcd --name drill --data-dir "$1" --listen-client-urls %s --advertise-client-urls %s '
                  '--listen-peer-urls %s --initial-advertise-peer-urls %s --initial-cluster drill=%s '
                  '>"$2" 2>&1 </dev/null &' % (CLIENT_URL, CLIENT_URL, PEER_URL, PEER_URL, PEER_URL))
        self.t.exec_ok(["sh", "-c", script, "sh", data_dir, log], what="start etcd on the restored data", idempotent=False)
        deadline = time.time() + 120
        while True:
            rc, out, err = self.t.exec(["env", "ETCDCTL_API=3", "etcdctl", "--endpoints=%s" % CLIENT_URL, "endpoint", "status", "-w", "json"],
                                       idempotent=True, timeout=30)
            if rc == 0:
                return etcd_cli.parse_json_output(out, "etcdctl endpoint status")[0]["Status"]
            if time.time() > deadline:
                rc_log, text, _e = self.t.exec(["tail", "-n", "20", log], idempotent=True, timeout=30)
                raise EtcdModuleError("etcd did not start on the restored data within 120 s: %s; its log: %s"
                                      % (err.decode("utf-8", "replace").strip(), text.decode("utf-8", "replace").strip()[-1500:]))
            time.sleep(1)

    def values(self, prefix, limit):
        data = etcd_cli.parse_json_output(self.etcdctl("get", prefix, "--prefix", "--limit=%d" % limit, "-w", "json"), "etcdctl get")
        return [(base64.b64decode(kv["key"]).decode("utf-8", "replace"), base64.b64decode(kv.get("value", "")))
                for kv in data.get("kvs") or []]


def run_drill(mod):
    p = mod.params
    facts = snapshot_file.inspect(p["snapshot"])
    sidecar = facts["sidecar"] or {}
    transport = mod.transport(p["namespace"], p["pod"], p["container"], timeout=scaled_timeout(facts["size"], p["timeout"]))
    transport.check()
    tools = mod.probe_tools(transport)
    tool = etcd_cli.require_tool(tools)
    work = p["work_dir"].rstrip("/")
    transport.exec_ok(["sh", "-c", 'rm -rf -- "$1" && mkdir -p -- "$1"', "sh", work], what="prepare %s" % work)
    remote = work + "/snapshot.db"
    transport.upload(p["snapshot"], remote, expected_sha256=facts["sha256"])
    skip, _reason = etcd_cli.decide_skip_hash_check("auto", method=facts["method"], has_trailer=facts["has_trailer"])
    transport.exec_ok(etcd_cli.snapshot_restore_argv(tool, remote, "drill", "drill=" + PEER_URL, PEER_URL, work + "/data",
                                                     skip_hash_check=skip), what="%s snapshot restore" % tool)
    drill = Drill(mod, transport)
    status = drill.start(work + "/data", work + "/etcd.log")
    revision = int((status.get("header") or {}).get("revision", 0))
    kv_count = etcd_cli.parse_keys_count(drill.etcdctl(*etcd_cli.keys_at_args(revision)))
    kv_hash = etcd_cli.parse_hashkv(drill.etcdctl(*etcd_cli.hashkv_args(revision)))
    values = []
    for prefix in PREFIXES:
        values.extend(drill.values(prefix, p["sample"]))
    objects = sample_objects(values)
    checks = compare(sidecar, revision, kv_count, kv_hash)
    name = "%s (sha256 %s)" % (p["snapshot"], facts["sha256"][:16])
    ok, line = verdict_line(name, status.get("version") or tools.get("etcd_version"), checks, objects)
    transport.exec(["sh", "-c", 'kill $(pidof etcd) 2>/dev/null; rm -rf -- "$1"', "sh", work], idempotent=True, timeout=60)
    return dict(changed=False, verdict="OK" if ok else "FAIL", verdict_line=line, revision=revision, kv_count=kv_count,
                kv_hash=kv_hash, compared=checks, objects=objects, etcd_version=status.get("version") or tools.get("etcd_version"),
                sha256=facts["sha256"])


def work(mod):
    mod.exit_json(**run_drill(mod))


def main():
    module = EtcdModule(
        argument_spec=dict(
            namespace=dict(type="str", required=True),
            pod=dict(type="str", required=True),
            container=dict(type="str", default="drill"),
            snapshot=dict(type="path", required=True),
            work_dir=dict(type="str", default="/var/lib/hcp-etcd-drill"),
            sample=dict(type="int", default=50),
            timeout=dict(type="int", default=600),
        ),
        supports_check_mode=False,
    )
    module.run(work)


if __name__ == "__main__":
    main()
