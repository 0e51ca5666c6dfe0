# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fakes for the unit tests: a pod with a tiny file system that answers the exec websocket.

Only unit tests fake the transport; the modules and PodTransport run for real on top of it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools
import hashlib
import json
from types import SimpleNamespace

import pytest

from ansible_collections.hcp.etcd.plugins.module_utils import etcd_module, pod_transport
from ansible_collections.hcp.etcd.plugins.module_utils.pod_transport import PodTransport

OK = {"metadata": {}, "status": "Success"}


def exit_status(rc):
    if rc == 0:
        return OK
    return {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: exit code %d" % rc,
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(rc)}]},
    }


NOT_FOUND = {
    "metadata": {},
    "status": "Failure",
    "message": 'OCI runtime exec failed: exec failed: unable to start container process: exec: "%s": '
    "executable file not found in $PATH: unknown",
}


def snapshot_bytes(payload_size=8192, seed=b"etcd"):
    """A file shaped like `snapshot save` output: a 512-aligned body plus its sha256."""
    body = (seed * (payload_size // len(seed) + 1))[:payload_size]
    return body + hashlib.sha256(body).digest()


class FakeWS(object):
    """Minimal kubernetes.stream WSClient: frames are queued up front or produced on stdin EOF."""

    def __init__(self, pod, argv, frame_size=1000, pod_name=None):
        self.pod = pod
        self.argv = argv
        self.pod_name = pod_name
        self.frame_size = frame_size
        self.stdin = bytearray()
        self._channels = {}
        self._pending = None
        self._connected = True
        self._all = object()
        self.closed_stdin = False
        self.sock = SimpleNamespace(settimeout=lambda _t: None)

    def _produce(self):
        if self._pending is None:
            rc, out, err, status = self.pod.run(self.argv, bytes(self.stdin), self.pod_name)
            frames = [(1, out[i:i + self.frame_size]) for i in range(0, len(out), self.frame_size)]
            if err:
                frames.append((2, err))
            frames.append((3, json.dumps(status if status is not None else exit_status(rc)).encode()))
            self._pending = frames

    def is_open(self):
        return self._connected

    def update(self, timeout=0):
        if not self._connected:
            return
        if self.pod.needs_stdin(self.argv) and not self.closed_stdin and not self.pod.stdin_complete(self.argv, self.stdin):
            return
        self._produce()
        if self.pod.break_stream_after is not None and self.pod.break_stream_after <= 0:
            self.pod.break_stream_after = None
            from websocket import WebSocketConnectionClosedException

            raise WebSocketConnectionClosedException("Connection to remote host was lost.")
        if self._pending:
            channel, data = self._pending.pop(0)
            self._channels[channel] = self._channels.get(channel, b"") + data
            if self.pod.break_stream_after is not None:
                self.pod.break_stream_after -= 1
        if not self._pending:
            self._connected = False

    def read_channel(self, channel, timeout=0):
        if channel not in self._channels:
            self.update(timeout)
        return self._channels.pop(channel, b"")

    def write_stdin(self, data):
        self.pod.stdin_writes.append(len(data))
        self.stdin.extend(data)

    def close_channel(self, channel):
        if channel == 0:
            self.closed_stdin = True

    def close(self):
        self._connected = False


class FakePod(object):
    """A container with etcd tools, emulated closely enough for the modules' control flow."""

    def __init__(self, etcdutl="3.5.16", etcdctl="3.5.16", bump_help=True, free_kib=10 * 1024 * 1024):
        self.files = {}
        self.mtimes = {}
        self.clock = 1000
        self.etcdutl = etcdutl
        self.etcdctl = etcdctl
        self.bump_help = bump_help
        self.free_kib = free_kib
        self.calls = []
        self.pods_asked = []  # the pod of each exec, in order
        self.kv = {}  # pod -> (key count, hashkv) at any revision; default (76, 98765); a hash of None: the read
        # times out; "compacted": the store was compacted past the revision
        self.kv_barriers = {}  # pod -> a Barrier its key count and hashkv reads wait on
        self.stdin_writes = []
        self.corrupt_next_checksum = 0
        self.break_stream_after = None
        self.disk_full_after = None
        self.files["/etc/etcd/tls/etcd-ca/ca.crt"] = b"ca"
        self.files["/etc/etcd/tls/client/etcd-client.crt"] = b"crt"
        self.files["/etc/etcd/tls/client/etcd-client.key"] = b"key"
        self.db = b"bbolt-db-without-trailer" * 200

    # ---- file system -------------------------------------------------------------------------

    def put(self, path, data):
        self.clock += 1
        self.files[path] = bytes(data)
        self.mtimes[path] = self.clock

    def under(self, path):
        prefix = path.rstrip("/") + "/"
        return [p for p in self.files if p == path or p.startswith(prefix)]

    def is_dir(self, path):
        prefix = path.rstrip("/") + "/"
        return any(p.startswith(prefix) for p in self.files)

    def move(self, src, dst):
        for p in self.under(src):
            new = dst + p[len(src):]
            self.files[new] = self.files.pop(p)
            self.mtimes[new] = self.mtimes.pop(p, self.clock)

    def remove(self, path):
        for p in self.under(path):
            del self.files[p]
            self.mtimes.pop(p, None)

    # ---- stdin -------------------------------------------------------------------------------

    @staticmethod
    def needs_stdin(argv):
        return argv[:2] == ["sh", "-c"] and "head -c" in argv[2]

    @staticmethod
    def stdin_complete(argv, stdin):
        return len(stdin) >= int(argv[4])

    # ---- commands ----------------------------------------------------------------------------

    def stream(self, pod, namespace, container=None, command=None, stdin=False, **kwargs):
        assert kwargs.get("binary") is True and kwargs.get("_preload_content") is False
        self.calls.append(list(command))
        self.pods_asked.append(pod)
        return FakeWS(self, list(command), pod_name=pod)

    def _tool(self, argv):
        if argv[:2] == ["env", "ETCDCTL_API=3"]:
            argv = argv[2:]
        return argv[0], argv[1:]

    def run(self, argv, stdin, pod_name=None):  # noqa: C901 - a dispatcher
        tool, rest = self._tool(argv)
        if tool in ("etcdutl", "etcdctl"):
            version = getattr(self, tool)
            if version is None:
                status = dict(NOT_FOUND)
                status["message"] = status["message"] % tool
                return 127, b"", b"", status
            return self._etcd(tool, version, rest, pod_name)
        if argv[0] == "sh" and argv[1] == "-c":
            return self._shell(argv[2], argv[3:], stdin)
        if argv[0] == "cat":
            if argv[1] not in self.files:
                return 1, b"", b"cat: %s: No such file or directory\n" % argv[1].encode(), None
            return 0, self.files[argv[1]], b"", None
        if argv[0] == "find" and "-delete" in argv:
            # the fake pod has no file ages: nothing is older than -mmin, nothing is deleted
            return 0, b"", b"", None
        if argv[0] == "rm":
            for path in argv[2:]:
                self.remove(path)
            return 0, b"", b"", None
        if argv[0] == "mv":
            src, dst = argv[-2], argv[-1]
            if not self.under(src):
                return 1, b"", b"mv: cannot stat\n", None
            if "-T" in argv and self.is_dir(dst):  # rename(2) does not replace a non-empty directory
                return 1, b"", b"mv: cannot move: Directory not empty\n", None
            self.remove(dst)
            self.move(src, dst)
            return 0, b"", b"", None
        if argv[0] == "ls":  # ls -1A -- DIR: the names directly in DIR
            prefix = argv[-1].rstrip("/") + "/"
            names = sorted(set(p[len(prefix):].split("/")[0] for p in self.files if p.startswith(prefix)))
            return 0, "".join(n + "\n" for n in names).encode(), b"", None
        if argv[:3] == ["stat", "-c", "%s"]:  # the size of one file
            if argv[3] not in self.files:
                return 1, b"", b"stat: cannot statx '%s': No such file or directory\n" % argv[3].encode(), None
            return 0, b"%d\n" % len(self.files[argv[3]]), b"", None
        if argv[0] == "test" and argv[1] == "-d":
            return (0 if self.is_dir(argv[2]) else 1), b"", b"", None
        if argv[0] == "df":
            out = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda 8000000 100 %d 1%% /var/lib\n" % self.free_kib
            return 0, out.encode(), b"", None
        if argv[0] == "du":
            total = sum(len(self.files[p]) for p in self.under(argv[2]))
            return 0, ("%d\t%s\n" % (total // 1024 + 1, argv[2])).encode(), b"", None
        raise AssertionError("unexpected command %r" % argv)

    def _checksum(self, data):
        sha = hashlib.sha256(data).hexdigest()
        if self.corrupt_next_checksum:
            self.corrupt_next_checksum -= 1
            sha = "0" * 64
        return sha

    def _shell(self, script, args, stdin):
        if "head -c" in script and "tee" in script:  # PodTransport.upload
            tmp, size = args[0], int(args[1])
            data = stdin[:size]
            err = b""
            if self.disk_full_after is not None:
                err = b"tee: %s: No space left on device\n" % tmp.encode()
                self.put(tmp, data[:self.disk_full_after])
            else:
                self.put(tmp, data)
            return 0, ("%s  -\n%d\n" % (self._checksum(data), len(self.files[tmp]))).encode(), err, None
        if "head -c" in script:  # PodTransport.write_bytes
            tmp, size = args[0], int(args[1])
            self.put(tmp, stdin[:size])
            if "mv -f" in script:
                self.remove(args[2])
                self.move(tmp, args[2])
            return 0, b"", b"", None
        if "sha256sum" in script and "cat" in script:  # PodTransport.download
            path = args[0]
            if path not in self.files:
                return 1, b"", b"sh: 1: cannot open %s: No such file\n" % path.encode(), None
            data = self.files[path]
            return 0, data, ("%d\n%s  -\n" % (len(data), self._checksum(data))).encode(), None
        if "[ -r" in script:
            out = "".join("%s\n" % p for p in args[1:] if p in self.files)
            return 0, out.encode(), b"", None
        if "stat -c" in script:
            data_dir = args[0]
            lines = []
            for p in sorted(self.files):
                for sub in ("/member/wal/", "/member/snap/"):
                    prefix = data_dir + sub
                    if p.startswith(prefix) and "/" not in p[len(prefix):]:
                        lines.append("%s %d %d" % (p[len(data_dir) + 1:], len(self.files[p]), self.mtimes.get(p, 0)))
            return 0, ("\n".join(lines) + ("\n" if lines else "")).encode(), b"", None
        raise AssertionError("unexpected script %r" % script)

    def _etcd(self, tool, version, rest, pod_name=None):
        if rest == ["version"]:
            return 0, ("%s version: %s\nAPI version: %s\n" % (tool, version, version.rsplit(".", 1)[0])).encode(), b"", None
        if rest[:2] == ["snapshot", "restore"] and rest[2:] == ["--help"]:
            text = "Usage:\n  %s snapshot restore <filename> [options] [flags]\n  --skip-hash-check\n" % tool
            if self.bump_help:
                text += "  --bump-revision uint\n  --mark-compacted\n"
            return 0, text.encode(), b"", None
        if "save" in rest:
            path = rest[-1]
            self.put(path, snapshot_bytes())
            return 0, b"", b"Snapshot saved at %s\n" % path.encode(), None
        if rest[:2] == ["snapshot", "status"]:
            path = rest[2]
            if path not in self.files:
                return 1, b"", b"Error: stat %s: no such file or directory\n" % path.encode(), None
            warn = b"Deprecated: Use `etcdutl snapshot status` instead.\n\n" if tool == "etcdctl" else b""
            out = json.dumps({"hash": 1234, "revision": 4321, "totalKey": 77, "totalSize": len(self.files[path])})
            return 0, out.encode() + b"\n", warn, None
        args = [a for a in rest if not a.startswith(("--cacert=", "--cert=", "--key=", "--endpoints="))]
        if args[:2] in (["get", ""], ["endpoint", "hashkv"]) and pod_name in self.kv_barriers:
            self.kv_barriers[pod_name].wait(timeout=5)  # broken when the members are not read at the same time
        count, kv_hash = self.kv.get(pod_name, (76, 98765))
        scan = args[:2] in (["get", ""], ["endpoint", "hashkv"])
        if scan and kv_hash is None:
            return 1, b"", b"Error: context deadline exceeded\n", None
        if scan and kv_hash == "compacted":
            return 1, b"", b"Error: etcdserver: mvcc: required revision has been compacted\n", None
        if args[:2] == ["get", ""] and "--keys-only" in args:  # the key count at a revision (etcd_cli.keys_at_args)
            return 0, json.dumps({"header": {"revision": 4321}, "count": count}).encode(), b"", None
        if args[:2] == ["endpoint", "hashkv"]:
            return 0, json.dumps([{"Endpoint": "https://localhost:2379", "HashKV": {"hash": kv_hash, "hash_revision": 4321}}]).encode(), b"", None
        if rest[:2] == ["snapshot", "restore"]:
            snap = rest[2]
            opts = dict(o[2:].split("=", 1) for o in rest[3:] if "=" in o)
            data = self.files.get(snap)
            if data is None:
                return 1, b"", b"Error: no such file\n", None
            trailer_ok = len(data) % 512 == 32 and hashlib.sha256(data[:-32]).digest() == data[-32:]
            if not trailer_ok and "--skip-hash-check" not in rest:
                return 1, b"", b"Error: snapshot file integrity check failed. 32 bytes found, 20 bytes expected\n", None
            data_dir = opts["data-dir"]
            if self.is_dir(data_dir):
                return 1, b"", b"Error: data-dir %q exists\n", None
            self.put(data_dir + "/member/snap/db", data[:-32] if trailer_ok else data)
            self.put(data_dir + "/member/wal/0000000000000000-0000000000000000.wal", b"w" * 100)
            self.restore_argv = [tool] + rest
            return 0, b"", b"", None
        raise AssertionError("unexpected etcd command %r" % (rest,))


class FakeCore(object):
    """The PodApi of a namespace: pods as plain dicts (name -> (phase, ready, containers)), one StatefulSet."""

    def __init__(self, pods=None, replicas=3):
        self.pods = pods if pods is not None else {"etcd-0": ("Running", True, ["etcd", "healthz"])}
        self.replicas = replicas

    def _pod(self, name, phase, ready, containers):
        return {
            "metadata": {"name": name},
            "spec": {"containers": [{"name": c} for c in containers]},
            "status": {
                "phase": phase,
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                "containerStatuses": [{"name": c, "state": {"running": {}}, "restartCount": 0} for c in containers],
            },
        }

    def read_pod(self, name, namespace):
        from kubernetes.client.rest import ApiException

        if name not in self.pods:
            raise ApiException(status=404, reason="Not Found")
        return self._pod(name, *self.pods[name])

    def list_pods(self, namespace, label_selector=None):
        return [self._pod(n, *v) for n, v in self.pods.items()]

    def read_statefulset(self, name, namespace):
        return {"metadata": {"name": name}, "spec": {"replicas": self.replicas}}

    def exec_stream(self, *args, **kwargs):  # pragma: no cover - never called
        raise AssertionError("the fake stream must be used")


class ExitJson(SystemExit):
    """Like the real exit_json, this ends the module (SystemExit is not caught by EtcdModule.run)."""

    def __init__(self, result):
        super(ExitJson, self).__init__(result.get("msg"))
        self.result = result


class FailJson(ExitJson):
    pass


class FakeAnsible(object):
    def __init__(self, params, check_mode=False):
        self.params = params
        self.check_mode = check_mode
        self.warnings = []

    def warn(self, msg):
        self.warnings.append(msg)

    def exit_json(self, **result):
        raise ExitJson(result)

    def fail_json(self, msg=None, **result):
        result["msg"] = msg
        raise FailJson(result)


def make_module(argument_spec, params, pod, core=None, check_mode=False):
    """An EtcdModule whose AnsibleModule, pod API and exec stream are fakes."""
    full = dict((name, spec.get("default")) for name, spec in argument_spec.items())
    full.update(params)
    mod = object.__new__(etcd_module.EtcdModule)
    mod._module = FakeAnsible(full, check_mode)
    mod._pods = core or FakeCore()
    mod._transport_factory = functools.partial(
        PodTransport, stream_fn=pod.stream, retry_delay=0
    )
    return mod


def run_module(fn, mod):
    """Run module logic through EtcdModule.run; return (failed, result)."""
    try:
        mod.run(fn)
    except FailJson as exc:
        return True, exc.result
    except ExitJson as exc:
        return False, exc.result
    raise AssertionError("module returned without exit_json")


@pytest.fixture
def pod():
    return FakePod()


class Crash(BaseException):
    """The module process died (SIGKILL): nothing after it runs, not even its error handling."""


@pytest.fixture
def crash_instead_of_kill(monkeypatch):
    """The transport's fault hook raises Crash where it would SIGKILL the module; no fault switch is
    inherited from the environment."""
    def crash():
        raise Crash()

    monkeypatch.setattr(pod_transport, "_kill_self", crash)
    for name in (pod_transport.FAULT_ENV, pod_transport.FAULT_COUNT_ENV, pod_transport.FAULT_TRACE_ENV):
        monkeypatch.delenv(name, raising=False)
