# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import stat

import pytest

from ansible_collections.hcp.etcd.plugins.module_utils import pod_transport
from ansible_collections.hcp.etcd.plugins.module_utils.pod_transport import PodTransport, PodTransportError

from conftest import FakeCore


def transport(pod, core=None, **kw):
    kw.setdefault("chunk_size", 1000)
    return PodTransport(core or FakeCore(), "clusters-demo", "etcd-0", "etcd", stream_fn=pod.stream,
                        retry_delay=0, **kw)


def local_file(tmp_path, data):
    """A local source file holding ``data``; its path as a string."""
    src = tmp_path / "s.db"
    src.write_bytes(data)
    return str(src)


def test_parse_exit_status():
    assert pod_transport.parse_exit_status(b'{"metadata":{},"status":"Success"}') == (0, "")
    rc, msg = pod_transport.parse_exit_status(
        '{"status":"Failure","reason":"NonZeroExitCode","message":"exit code 3",'
        '"details":{"causes":[{"reason":"ExitCode","message":"3"}]}}')
    assert rc == 3 and "exit code 3" in msg
    rc, _msg = pod_transport.parse_exit_status('{"status":"Failure","message":"exec: \\"etcdutl\\": executable file not found in $PATH"}')
    assert rc == 127
    assert pod_transport.parse_exit_status("") == (None, "")


def test_exec_returns_bytes_and_rc(pod):
    t = transport(pod)
    rc, out, err = t.exec(["etcdctl", "version"])
    assert rc == 0 and out.startswith(b"etcdctl version: 3.5.16")
    rc, out, err = t.exec(["cat", "/nope"])
    assert rc == 1 and b"No such file" in err


def test_exec_missing_binary_is_127_with_message(pod):
    pod.etcdutl = None
    rc, _out, err = transport(pod).exec(["etcdutl", "version"])
    assert rc == 127 and err.startswith(b"exec failed: ") and b"executable file not found" in err
    with pytest.raises(PodTransportError, match="etcdutl not found in container etcd"):
        transport(pod).exec_ok(["etcdutl", "version"])


def test_download_is_one_exec_that_also_hashes_in_the_pod(pod, tmp_path):
    pod.put("/var/lib/s.db", b"q" * 3000)
    transport(pod).download("/var/lib/s.db", str(tmp_path / "s.db"))
    assert pod.calls == [["sh", "-c", pod_transport.DOWNLOAD_SCRIPT, "/var/lib/s.db"]]


def test_download_streams_in_frames_and_verifies(pod, tmp_path):
    data = os.urandom(10 * 1024 + 17)
    pod.put("/var/lib/s.db", data)
    dest = str(tmp_path / "s.db")
    sha, size = transport(pod).download("/var/lib/s.db", dest)
    assert sha == hashlib.sha256(data).hexdigest() and size == len(data)
    with open(dest, "rb") as handle:
        assert handle.read() == data
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    assert [p for p in os.listdir(str(tmp_path)) if p.endswith(".part")] == []


def test_download_checksum_mismatch_retries_then_fails(pod, tmp_path):
    pod.put("/var/lib/s.db", b"a" * 5000)
    pod.corrupt_next_checksum = 10
    dest = str(tmp_path / "s.db")
    with pytest.raises(PodTransportError, match="sha256 mismatch"):
        transport(pod, retries=3).download("/var/lib/s.db", dest)
    assert not os.path.exists(dest)
    assert len([c for c in pod.calls if c[:3] == ["sh", "-c", pod_transport.DOWNLOAD_SCRIPT]]) == 3
    assert os.listdir(str(tmp_path)) == []


def test_download_recovers_from_one_bad_checksum(pod, tmp_path):
    pod.put("/var/lib/s.db", b"a" * 5000)
    pod.corrupt_next_checksum = 1
    sha, _size = transport(pod).download("/var/lib/s.db", str(tmp_path / "s.db"))
    assert sha == hashlib.sha256(b"a" * 5000).hexdigest()


def test_download_retries_a_broken_websocket(pod, tmp_path):
    pod.put("/var/lib/s.db", b"b" * 5000)
    pod.break_stream_after = 2
    sha, size = transport(pod).download("/var/lib/s.db", str(tmp_path / "s.db"))
    assert size == 5000 and len([c for c in pod.calls if c[:3] == ["sh", "-c", pod_transport.DOWNLOAD_SCRIPT]]) == 2


def test_download_missing_file_is_clear(pod, tmp_path):
    with pytest.raises(PodTransportError, match="cannot read /var/lib/none"):
        transport(pod).download("/var/lib/none", str(tmp_path / "x"))


def test_upload_chunks_and_verifies(pod, tmp_path):
    data = os.urandom(4500)
    src = local_file(tmp_path, data)
    sha, size = transport(pod).upload(src, "/var/lib/r.db", expected_sha256=hashlib.sha256(data).hexdigest())
    assert pod.files["/var/lib/r.db"] == data and "/var/lib/r.db.tmp" not in pod.files
    assert pod.stdin_writes == [1000, 1000, 1000, 1000, 500]  # streamed, never one big write
    assert size == 4500 and sha == hashlib.sha256(data).hexdigest()


def test_upload_is_one_exec_plus_the_rename(pod, tmp_path):
    src = local_file(tmp_path, b"y" * 2500)
    transport(pod).upload(src, "/var/lib/r.db")
    assert pod.calls == [["sh", "-c", pod_transport.UPLOAD_SCRIPT, "/var/lib/r.db.tmp", "2500"],
                         ["mv", "-f", "--", "/var/lib/r.db.tmp", "/var/lib/r.db"]]


def test_upload_to_a_full_disk_fails_at_once_with_the_reason(pod, tmp_path):
    src = local_file(tmp_path, b"y" * 2500)
    pod.disk_full_after = 1000
    with pytest.raises(PodTransportError, match="No space left on device"):
        transport(pod).upload(src, "/var/lib/r.db")
    assert len(pod.calls) == 2  # the upload and the removal of the partial file: no retries
    assert "/var/lib/r.db" not in pod.files and "/var/lib/r.db.tmp" not in pod.files


def test_mask_payload_equals_websocket_clients_masking():
    websocket = pytest.importorskip("websocket")
    for size in (0, 1, 3, 4, 5, 1000, 65537):
        data = os.urandom(size)
        key = os.urandom(4)
        assert pod_transport.mask_payload(key, data) == websocket.ABNF.mask(key, data)


def test_stdin_frames_are_the_same_bytes_as_the_clients_own(pod):
    websocket = pytest.importorskip("websocket")
    sent = []
    ws = type("WS", (), {})()
    ws.sock = type("Sock", (), {"send_frame": lambda self, frame: sent.append(frame)})()
    pod_transport._send_stdin(ws, b"\x01payload\xff" * 100)
    frame = sent[0]
    frame.get_mask_key = lambda _n: b"\x11\x22\x33\x44"
    reference = websocket.ABNF.create_frame(b"\x00" + b"\x01payload\xff" * 100, websocket.ABNF.OPCODE_BINARY)
    reference.get_mask_key = lambda _n: b"\x11\x22\x33\x44"
    assert frame.format() == reference.format()


def test_upload_rejects_wrong_expected_sha(pod, tmp_path):
    src = local_file(tmp_path, b"x" * 100)
    with pytest.raises(PodTransportError, match="expected"):
        transport(pod).upload(src, "/var/lib/r.db", expected_sha256="0" * 64)
    assert "/var/lib/r.db" not in pod.files and "/var/lib/r.db.tmp" not in pod.files


def test_upload_remote_mismatch_fails_after_retries(pod, tmp_path):
    src = local_file(tmp_path, b"x" * 3000)
    pod.corrupt_next_checksum = 10
    with pytest.raises(PodTransportError, match="sha256 mismatch uploading"):
        transport(pod).upload(src, "/var/lib/r.db")
    assert "/var/lib/r.db" not in pod.files


def test_check_missing_pod_and_container(pod):
    with pytest.raises(PodTransportError, match="pod etcd-9 not found in namespace clusters-demo"):
        PodTransport(FakeCore(), "clusters-demo", "etcd-9", "etcd", stream_fn=pod.stream).check()
    with pytest.raises(PodTransportError, match=r"container restore not in pod .*containers: \[etcd, healthz\]"):
        PodTransport(FakeCore(), "clusters-demo", "etcd-0", "restore", stream_fn=pod.stream).check()


def test_check_not_running_pod_suggests_copy_db(pod):
    core = FakeCore({"etcd-0": ("Pending", False, ["etcd"])})
    with pytest.raises(PodTransportError, match="copy_db"):
        PodTransport(core, "clusters-demo", "etcd-0", "etcd", stream_fn=pod.stream).check()


def test_exec_timeout(pod):
    ticks = iter(range(0, 10000, 50))
    t = PodTransport(FakeCore(), "ns", "etcd-0", "etcd", stream_fn=pod.stream, clock=lambda: next(ticks), timeout=60)
    pod.put("/big", b"z" * 100000)
    with pytest.raises(pod_transport.ExecTimeout, match="timed out"):
        t.exec(["cat", "/big"])


# ---- PodApi: kubernetes.core's client, no typed CoreV1Api ---------------------------------------

class FakeK8SClient(object):
    """kubernetes.core's K8SClient: resource(), get() returning objects with to_dict(), configuration."""

    def __init__(self, token=None, objects=None):
        from types import SimpleNamespace

        self.objects = objects or {}
        self.gets = []
        settings = {"BearerToken": {"in": "header", "key": "authorization", "value": "Bearer " + token}} if token else {}
        self.configuration = SimpleNamespace(host="https://api.example:6443", auth_settings=lambda: settings)

    def resource(self, kind, api_version):
        return (kind, api_version)

    def get(self, resource, name=None, namespace=None, **query):
        from types import SimpleNamespace

        self.gets.append((resource, name, namespace, query))
        if (resource[0], name) not in self.objects:
            from kubernetes.dynamic.exceptions import NotFoundError

            raise NotFoundError(SimpleNamespace(status=404, reason="Not Found", body=b"", headers={}))
        return SimpleNamespace(to_dict=lambda: self.objects[(resource[0], name)])


def test_exec_stream_opens_the_exec_websocket_with_the_bearer_token(monkeypatch):
    calls = []
    monkeypatch.setattr(pod_transport.ws_client, "websocket_call",
                        lambda configuration, method, url, **kw: calls.append((method, url, kw)) or "ws")
    api = pod_transport.PodApi(FakeK8SClient(token="s3cret"))
    assert api.exec_stream("etcd-0", "clusters-a.b", "etcd", ["sh", "-c", "echo 1"], True) == "ws"
    method, url, kw = calls[0]
    assert (method, url) == ("GET", "https://api.example:6443/api/v1/namespaces/clusters-a.b/pods/etcd-0/exec")
    assert kw["query_params"] == [("command", ["sh", "-c", "echo 1"]), ("container", "etcd"), ("stdin", "true"),
                                  ("stdout", "true"), ("stderr", "true"), ("tty", "false")]
    assert kw["headers"] == {"authorization": "Bearer s3cret"}
    assert kw["binary"] is True and kw["_preload_content"] is False
    # a client-certificate kubeconfig has no token: no authorization header at all
    pod_transport.PodApi(FakeK8SClient()).exec_stream("etcd-0", "ns", "etcd", ["true"], False)
    assert calls[1][2]["headers"] == {} and ("stdin", "false") in calls[1][2]["query_params"]
    # the websocket URL the client makes of it: one command= per argv element
    url = pod_transport.ws_client.get_websocket_url(calls[0][1], calls[0][2]["query_params"])
    assert url.startswith("wss://api.example:6443/api/v1/namespaces/clusters-a.b/pods/etcd-0/exec?command=sh&command=-c&command=echo+1&container=etcd")


def test_pod_reads_are_plain_dicts_and_a_missing_pod_is_named():
    pod = {"metadata": {"name": "etcd-0"}, "spec": {"containers": [{"name": "etcd"}]},
           "status": {"phase": "Running", "containerStatuses": [{"name": "etcd", "state": {"waiting": {}}, "restartCount": 4}]}}
    client = FakeK8SClient(objects={("Pod", "etcd-0"): pod, ("Pod", None): {"items": [pod]},
                                    ("StatefulSet", "etcd"): {"spec": {"replicas": 3}}})
    api = pod_transport.PodApi(client)
    assert api.list_pods("ns", label_selector="app=etcd") == [pod]
    assert client.gets[-1] == (("Pod", "v1"), None, "ns", {"label_selector": "app=etcd"})
    assert api.read_statefulset("etcd", "ns")["spec"]["replicas"] == 3
    with pytest.raises(PodTransportError, match="container etcd of pod ns/etcd-0 is not running .restarts: 4"):
        PodTransport(api, "ns", "etcd-0", "etcd").check()
    with pytest.raises(PodTransportError, match="pod etcd-9 not found in namespace ns"):
        PodTransport(api, "ns", "etcd-9", "etcd").check()


def test_retries_wait_longer_each_time_through_ansible_cores_retry_helper(pod, monkeypatch):
    import ansible.module_utils.api as ansible_api
    from websocket import WebSocketException

    slept = []
    monkeypatch.setattr(ansible_api.time, "sleep", slept.append)

    def broken(*_args, **_kwargs):
        raise WebSocketException("connection reset")

    t = PodTransport(FakeCore(), "clusters-demo", "etcd-0", "etcd", stream_fn=broken, retry_delay=1.5, retries=3)
    with pytest.raises(pod_transport.TransientTransportError, match="failed 3 times: connection reset"):
        t.exec(["true"], idempotent=True)
    # three exec attempts, each opening the stream three times: 1.5 s then 3 s between opens, 1.5 s then
    # 3 s between execs
    assert slept == [1.5, 3.0, 1.5, 1.5, 3.0, 3.0, 1.5, 3.0]
    slept[:] = []
    with pytest.raises(pod_transport.TransientTransportError):
        t.exec(["mv", "a", "b"])  # not idempotent: one exec, its stream opened up to three times
    assert slept == [1.5, 3.0]
