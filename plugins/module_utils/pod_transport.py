# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way hcp.etcd talks to a container: the Kubernetes exec websocket.

* ``exec(argv, stdin=None, timeout=None) -> (rc, stdout, stderr)`` with bytes frames.
* ``download(remote, local)`` streams ``cat`` into a 0600 temp file next to ``local``, hashing while
  writing; in the same exec ``sha256sum`` reads the file in the container at the same time, so the
  size and sha256 of both ends are compared without a second pass. Then it renames atomically.
* ``upload(local, remote)`` streams stdin chunks into ``head -c <size> | tee remote.tmp | sha256sum``
  (never the whole file in memory): the container hashes what it writes while it writes it, and
  ``wc -c`` reports what landed on disk. Then it renames. ``head -c`` ends on the byte count, so this
  works on v4 exec streams that cannot half-close stdin; on v5 stdin is closed as well. Client frames
  are masked (RFC 6455) with ``bytes.translate`` instead of websocket-client's big-integer XOR, which
  took about half of the upload's CPU time.

Transient websocket failures (connection closed, handshake 5xx, 429) are retried a few times;
the transfer functions retry the whole transfer, ``exec`` only retries opening the stream unless
``idempotent=True``. A full local disk (download) is reported as such and never retried.

Timeouts grow with the size: every byte streamed extends the deadline by its time at
``MIN_RATE`` bytes/s, and ``scaled_timeout(size, floor)`` gives commands whose work grows with a
file (snapshot status and restore) their time.

Fault hook (tests only, off unless ``HCP_ETCD_FAULT`` is set in the module's environment):
``HCP_ETCD_FAULT=<regex>:<n>:<action>[;...]``. Every exec is described as ``"<tag> <pod>: <argv>"``
(the tag is what the module sets, etcd_restore_member sets its state); at the n-th exec whose
description matches the regex, ``kill`` SIGKILLs the module process before the exec runs,
``kill-after`` after it ran, ``fail`` does not run it and returns rc 126, ``lose-exit`` runs it and
loses its exit status (as a broken stream would). Matches are counted in the file
``HCP_ETCD_FAULT_COUNT_FILE`` when set (across module runs), else in the process.
``HCP_ETCD_FAULT_TRACE=<file>`` appends the description of every exec to that file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import json
import os
import re
import signal
import tempfile
import time
from urllib.parse import quote

from ansible.module_utils.api import retry_with_delays_and_condition

try:
    from kubernetes.client.rest import ApiException
    from kubernetes.dynamic.exceptions import DynamicApiError
    from kubernetes.stream import ws_client
    from kubernetes.stream.ws_client import ERROR_CHANNEL, STDERR_CHANNEL, STDOUT_CHANNEL
except ImportError:  # handled by the module wrapper (AnsibleK8SModule.requires)
    ws_client = None
    STDOUT_CHANNEL, STDERR_CHANNEL, ERROR_CHANNEL = 1, 2, 3

    class ApiException(Exception):  # type: ignore[no-redef]
        status = 0
        reason = ""

    class DynamicApiError(Exception):  # type: ignore[no-redef]
        status = 0
        reason = ""

try:
    from websocket import ABNF, WebSocketException
except ImportError:  # pragma: no cover
    ABNF = None

    class WebSocketException(Exception):  # type: ignore[no-redef]
        pass


DEFAULT_CHUNK_SIZE = 256 * 1024  # larger chunks only add allocator work (page faults) per frame
DEFAULT_TIMEOUT = 600
DEFAULT_RETRIES = 3
STDIN_CHANNEL = 0
RC_NOT_FOUND = 127
RC_CANNOT_EXEC = 126
EXEC_FAILED_PREFIX = "exec failed: "
SOCKET_TIMEOUT = 120
MIN_RATE = 2 * 1024 * 1024  # bytes/s: the slowest transfer or snapshot command still taken as working
FAULT_ENV = "HCP_ETCD_FAULT"
FAULT_COUNT_ENV = "HCP_ETCD_FAULT_COUNT_FILE"
FAULT_TRACE_ENV = "HCP_ETCD_FAULT_TRACE"
FAULT_ACTIONS = ("kill", "kill-after", "fail", "lose-exit")
FAULT_MESSAGE = "injected fault (%s)" % FAULT_ENV
# upload: the container hashes the bytes as it writes them, then reports the size on disk
UPLOAD_SCRIPT = 'umask 077 && head -c "$1" | tee "$0" | sha256sum && wc -c < "$0"'
# download: the size, then sha256sum reading the file while cat streams it (both on stderr)
DOWNLOAD_SCRIPT = 'wc -c < "$0" >&2 || exit 1; sha256sum < "$0" >&2 & cat "$0" || exit 1; wait $!'
# write_bytes: head -c ends on the byte count; sync FILE (coreutils) fsyncs the file, then its directory
WRITE_SCRIPT = 'umask 077 && head -c "$1" > "$0" && sync -- "$0" && mv -f -- "$0" "$2" && sync -- "${2%/*}/"'
_XOR_TABLES = []


def mask_payload(mask_key, data):
    """RFC 6455 client masking: ``data`` XOR the 4-byte ``mask_key`` repeated, at C speed.

    websocket-client XORs through Python integers; four ``bytes.translate`` passes over strided
    slices do the same about three times faster."""
    if not _XOR_TABLES:
        _XOR_TABLES.extend(bytes(value ^ key for value in range(256)) for key in range(256))
    if isinstance(mask_key, str):
        mask_key = mask_key.encode("latin-1")
    data = bytes(data)
    out = bytearray(len(data))
    for offset in range(4):
        out[offset::4] = data[offset::4].translate(_XOR_TABLES[mask_key[offset]])
    return bytes(out)


if ABNF is not None:

    class FastMaskFrame(ABNF):
        """A client frame masked by ``mask_payload`` (same bytes on the wire as ABNF's own)."""

        def _get_masked(self, mask_key):
            if isinstance(mask_key, str):
                mask_key = mask_key.encode("latin-1")
            return mask_key + mask_payload(mask_key, self.data)

else:  # pragma: no cover
    FastMaskFrame = None


class PodTransportError(Exception):
    """Permanent failure; the message names the fix."""


class TransientTransportError(PodTransportError):
    """Failure worth retrying (stream closed early, API 5xx/429, checksum mismatch)."""


class ExitStatusLost(TransientTransportError):
    """The command ran (or may have run) but its exit status never arrived: its effect is unknown."""


class LocalDiskError(PodTransportError):
    """Writing on the controller failed (disk full, quota, read-only): not a broken stream, not retried."""


class ExecTimeout(PodTransportError):
    pass


class _Discard(object):
    """Replaces WSClient's capture buffer, which would otherwise keep every byte received."""

    def write(self, _data):
        return None

    def getvalue(self):
        return b""


def _is_transient_api_error(exc):
    status = getattr(exc, "status", None)
    text = "%s %s" % (getattr(exc, "reason", ""), exc)
    if status in (429, 500, 502, 503, 504):
        return True
    if status == 0 or status is None:
        lowered = text.lower()
        return any(
            needle in lowered
            for needle in (
                "handshake status 5",
                "handshake status 429",
                "connection reset",
                "connection refused",
                "connection aborted",
                "broken pipe",
                "timed out",
                "closed",
                "eof occurred",
            )
        )
    return False


def parse_exit_status(raw):
    """Turn the exec error channel (a JSON Status) into ``(rc, message)``; rc None if unknown."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    raw = (raw or "").strip()
    if not raw:
        return None, ""
    try:
        status = json.loads(raw)
    except ValueError:
        try:
            import yaml

            status = yaml.safe_load(raw)
        except Exception:  # pylint: disable=broad-except
            return None, raw
    if not isinstance(status, dict):
        return None, raw
    if status.get("status") == "Success":
        return 0, ""
    message = status.get("message") or raw
    causes = (status.get("details") or {}).get("causes") or []
    if status.get("reason") == "NonZeroExitCode":
        for cause in causes:
            if cause.get("reason") == "ExitCode":
                try:
                    return int(cause.get("message")), message
                except (TypeError, ValueError):
                    break
    lowered = message.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        return RC_NOT_FOUND, message
    return RC_CANNOT_EXEC, message


def _text(data):
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data or ""


def scaled_timeout(size, floor=DEFAULT_TIMEOUT):
    """Seconds for work on ``size`` bytes: ``floor``, or more when ``size`` needs it at MIN_RATE."""
    return max(int(floor or DEFAULT_TIMEOUT), 60 + int(size or 0) // MIN_RATE)


def parse_faults(text):
    """``[(regex, n, action)]`` from HCP_ETCD_FAULT; a bad spec raises (a test must not run fault-free)."""
    faults = []
    for spec in (text or "").split(";"):
        if not spec.strip():
            continue
        try:
            pattern, count, action = spec.strip().rsplit(":", 2)
            count = int(count)
        except ValueError:
            raise PodTransportError("%s: %r is not <regex>:<n>:<action>" % (FAULT_ENV, spec))
        if action not in FAULT_ACTIONS or count < 1:
            raise PodTransportError("%s: %r: n >= 1, action one of %s" % (FAULT_ENV, spec, ", ".join(FAULT_ACTIONS)))
        faults.append((re.compile(pattern), count, action))
    return faults


def _kill_self():  # replaced in unit tests
    os.kill(os.getpid(), signal.SIGKILL)


class FaultHook(object):
    """The test-only fault injection of every exec (see the module docstring); inert without the env."""

    def __init__(self, environ=None):
        environ = os.environ if environ is None else environ
        self.faults = parse_faults(environ.get(FAULT_ENV))
        self.count_file = environ.get(FAULT_COUNT_ENV)
        self.trace_file = environ.get(FAULT_TRACE_ENV)
        self.counts = {}

    def __bool__(self):
        return bool(self.faults or self.trace_file)

    __nonzero__ = __bool__

    def _bump(self, indexes):
        """Add one to the match count of each fault in ``indexes``; return the new counts."""
        if not self.count_file:
            for index in indexes:
                self.counts[index] = self.counts.get(index, 0) + 1
            return dict(self.counts)
        import fcntl

        with open(self.count_file, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            try:
                counts = dict((int(k), v) for k, v in json.loads(handle.read() or "{}").items())
            except ValueError:
                counts = {}
            for index in indexes:
                counts[index] = counts.get(index, 0) + 1
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(counts))
            return counts

    def action(self, subject):
        """The action to take for the exec described by ``subject``, or None."""
        if self.trace_file:
            with open(self.trace_file, "a") as handle:
                handle.write(subject.replace("\n", " ") + "\n")
        matching = [i for i, (regex, _n, _a) in enumerate(self.faults) if regex.search(subject)]
        if not matching:
            return None
        counts = self._bump(matching)
        for index in matching:
            if counts[index] == self.faults[index][1]:
                return self.faults[index][2]
        return None


class PodApi(object):
    """The pod calls of hcp.etcd over kubernetes.core's client (``get_api_client``): reads as plain dicts
    through its dynamic client, exec through the Kubernetes client's websocket. Not the typed
    ``CoreV1Api``: in recent clients its import alone takes about a second, in every module run."""

    def __init__(self, client):
        self.client = client  # kubernetes.core K8SClient

    def _get(self, kind, api_version, namespace, name=None, **query):
        found = self.client.get(self.client.resource(kind, api_version), name=name, namespace=namespace, **query)
        return found.to_dict()

    def read_pod(self, name, namespace):
        return self._get("Pod", "v1", namespace, name)

    def list_pods(self, namespace, label_selector=None):
        return self._get("Pod", "v1", namespace, label_selector=label_selector).get("items") or []

    def read_statefulset(self, name, namespace):
        return self._get("StatefulSet", "apps/v1", namespace, name)

    def exec_stream(self, pod, namespace, container, command, stdin, binary=True, _preload_content=False):
        """An open exec websocket (``WSClient``) to ``command`` in ``container``, as
        ``kubernetes.stream.stream(CoreV1Api.connect_get_namespaced_pod_exec, ...)`` opens it."""
        configuration = self.client.configuration
        headers = {}
        bearer = (configuration.auth_settings() or {}).get("BearerToken") or {}
        if bearer.get("value"):
            headers["authorization"] = bearer["value"]  # the client's refresh hook ran for this value
        url = "%s/api/v1/namespaces/%s/pods/%s/exec" % (configuration.host, quote(namespace, safe=""), quote(pod, safe=""))
        query = [("command", list(command)), ("container", container), ("stdin", "true" if stdin else "false"),
                 ("stdout", "true"), ("stderr", "true"), ("tty", "false")]
        return ws_client.websocket_call(configuration, "GET", url, query_params=query, headers=headers,
                                        binary=binary, _preload_content=_preload_content)


class PodTransport(object):
    """Exec, download and upload against one container of one pod."""

    def __init__(
        self,
        pods,
        namespace,
        pod,
        container,
        timeout=DEFAULT_TIMEOUT,
        retries=DEFAULT_RETRIES,
        retry_delay=2.0,
        chunk_size=DEFAULT_CHUNK_SIZE,
        stream_fn=None,
        clock=time.monotonic,
    ):
        self.pods = pods  # a PodApi
        self.namespace = namespace
        self.pod = pod
        self.container = container
        self.timeout = timeout
        self.retries = max(1, int(retries))
        self.retry_delay = retry_delay
        self.chunk_size = chunk_size
        self._stream = stream_fn or pods.exec_stream
        self._clock = clock
        self.tag = "-"  # names the caller in the fault hook's exec descriptions
        self.faults = FaultHook()

    # ---- pod checks ----------------------------------------------------------------------

    def where(self):
        return "container %s of pod %s/%s" % (self.container, self.namespace, self.pod)

    def check(self):
        """Fail clearly when the pod or container is missing or not running; return the pod (a dict)."""
        try:
            pod = self.pods.read_pod(self.pod, self.namespace)
        except (ApiException, DynamicApiError) as exc:
            if getattr(exc, "status", None) == 404:
                raise PodTransportError(
                    "pod %s not found in namespace %s" % (self.pod, self.namespace)
                )
            raise PodTransportError(
                "cannot read pod %s/%s: %s %s"
                % (self.namespace, self.pod, getattr(exc, "status", ""), getattr(exc, "reason", exc))
            )
        names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        if self.container not in names:
            raise PodTransportError(
                "container %s not in pod %s/%s; containers: [%s]; set the container option"
                % (self.container, self.namespace, self.pod, ", ".join(names))
            )
        status = pod.get("status") or {}
        phase = status.get("phase")
        if phase != "Running":
            raise PodTransportError(
                "pod %s/%s is %s, not Running; a crashing etcd cannot be exec'd: copy its data with "
                "method copy_db from a helper pod that mounts the member's PVC"
                % (self.namespace, self.pod, phase)
            )
        for cstatus in status.get("containerStatuses") or []:
            if cstatus.get("name") == self.container:
                state = cstatus.get("state")
                if state is not None and state.get("running") is None:
                    raise PodTransportError(
                        "container %s of pod %s/%s is not running (restarts: %s)"
                        % (self.container, self.namespace, self.pod, cstatus.get("restartCount", "?"))
                    )
        return pod

    # ---- streams -------------------------------------------------------------------------

    def _with_retries(self, call, attempts, failed=None):
        """``call()`` through ansible-core's retry helper: a TransientTransportError is retried after
        retry_delay, 2 x retry_delay, ... seconds, ``attempts`` calls in all. After the last one,
        ``failed(error)`` makes the error raised (default: the last error itself)."""
        delays = [self.retry_delay * (n + 1) for n in range(max(1, int(attempts)) - 1)]
        retrying = retry_with_delays_and_condition(
            delays, should_retry_error=lambda exc: isinstance(exc, TransientTransportError))(call)
        try:
            return retrying()
        except TransientTransportError as exc:
            if failed is None:
                raise
            raise failed(exc)

    def _open(self, argv, stdin):
        return self._with_retries(
            lambda: self._open_once(argv, stdin), self.retries,
            lambda exc: TransientTransportError("exec stream to %s failed %d times: %s" % (self.where(), self.retries, exc)))

    def _open_once(self, argv, stdin):
        try:
            ws = self._stream(
                self.pod,
                self.namespace,
                container=self.container,
                command=list(argv),
                stdin=stdin,
                binary=True,
                _preload_content=False,
            )
        except ApiException as exc:
            if getattr(exc, "status", None) == 404:
                raise PodTransportError("pod %s not found in namespace %s" % (self.pod, self.namespace))
            if not _is_transient_api_error(exc):
                raise PodTransportError("cannot exec in %s: %s" % (self.where(), getattr(exc, "reason", exc)))
            raise TransientTransportError(str(exc))
        except (WebSocketException, OSError) as exc:
            raise TransientTransportError(str(exc))
        if hasattr(ws, "_all"):
            ws._all = _Discard()  # pylint: disable=protected-access
        if hasattr(ws, "_frames_immediately_available"):
            # The client's update() reads every frame already waiting and appends each to one
            # growing bytes buffer: quadratic in the size of a streamed file (a 64 MiB download
            # took minutes). One frame per update() keeps the buffer at one frame; frames
            # already decrypted by TLS are still seen through the SSL pending() check.
            ws._frames_immediately_available = lambda: False  # pylint: disable=protected-access
        sock = getattr(ws, "sock", None)
        if sock is not None and hasattr(sock, "settimeout"):
            sock.settimeout(SOCKET_TIMEOUT)  # a stalled send/recv must not hang forever
        return ws

    def _drain(self, ws, on_stdout, stderr_parts):
        out = ws.read_channel(STDOUT_CHANNEL)
        if out:
            on_stdout(out if isinstance(out, bytes) else out.encode("utf-8"))
        err = ws.read_channel(STDERR_CHANNEL)
        if err:
            stderr_parts.append(err if isinstance(err, bytes) else err.encode("utf-8"))

    def _run(self, argv, stdin_source=None, on_stdout=None, timeout=None):
        """Run once; stream stdin from an iterable of bytes; return ``(rc, stderr)``."""
        action = self.faults.action("%s %s: %s" % (self.tag, self.pod, " ".join(argv))) if self.faults else None
        if action == "kill":
            _kill_self()
        if action == "fail":  # as an exec that could not start: never a command's own answer
            return RC_CANNOT_EXEC, ("%s: %s not run" % (FAULT_MESSAGE, argv[0])).encode("utf-8")
        rc, stderr = self._run_stream(argv, stdin_source, on_stdout, timeout)
        if action == "kill-after":
            _kill_self()
        if action == "lose-exit":
            raise ExitStatusLost("exec stream to %s closed without an exit status (%s)" % (self.where(), FAULT_MESSAGE))
        return rc, stderr

    def _run_stream(self, argv, stdin_source, on_stdout, timeout):
        timeout = timeout or self.timeout
        start = self._clock()
        streamed = [0]  # every byte streamed either way extends the deadline by its time at MIN_RATE

        def deadline():
            return start + timeout + streamed[0] / float(MIN_RATE)

        ws = self._open(argv, stdin=stdin_source is not None)
        stderr_parts = []
        sink = on_stdout or (lambda _data: None)

        def on_stdout(data):
            streamed[0] += len(data)
            sink(data)

        error_raw = b""
        try:
            try:
                if stdin_source is not None:
                    for chunk in stdin_source:
                        if not ws.is_open():
                            break
                        if chunk:
                            _send_stdin(ws, chunk)
                            streamed[0] += len(chunk)
                        ws.update(timeout=0)
                        self._drain(ws, on_stdout, stderr_parts)
                        if self._clock() > deadline():
                            raise ExecTimeout("%s timed out after %ss in %s" % (argv[0], timeout, self.where()))
                    if ws.is_open() and hasattr(ws, "close_channel"):
                        ws.close_channel(STDIN_CHANNEL)
                while ws.is_open():
                    remaining = deadline() - self._clock()
                    if remaining <= 0:
                        raise ExecTimeout(
                            "%s timed out after %ss in %s; raise the timeout option"
                            % (" ".join(argv[:3]), timeout, self.where())
                        )
                    ws.update(timeout=min(remaining, 1.0))
                    self._drain(ws, on_stdout, stderr_parts)
                    raw = ws.read_channel(ERROR_CHANNEL)
                    if raw:
                        error_raw += raw if isinstance(raw, bytes) else raw.encode("utf-8")
                self._drain(ws, on_stdout, stderr_parts)
                raw = ws.read_channel(ERROR_CHANNEL)
                if raw:
                    error_raw += raw if isinstance(raw, bytes) else raw.encode("utf-8")
            except (WebSocketException, OSError) as exc:
                raise ExitStatusLost("exec stream to %s broke: %s" % (self.where(), exc))
        finally:
            try:
                ws.close()
            except Exception:  # pylint: disable=broad-except
                pass
        rc, message = parse_exit_status(error_raw)
        stderr = b"".join(stderr_parts)
        if rc is None:
            raise ExitStatusLost(
                "exec stream to %s closed without an exit status (stream timeout?)" % self.where()
            )
        if message and rc in (RC_NOT_FOUND, RC_CANNOT_EXEC) and not stderr:
            # the process never started: say so, so callers can tell it from a command's own rc 127
            stderr = (EXEC_FAILED_PREFIX + message).encode("utf-8")
        return rc, stderr

    def _run_collect(self, argv, stdin_source=None, timeout=None):
        out = []
        rc, err = self._run(argv, stdin_source=stdin_source, on_stdout=out.append, timeout=timeout)
        return rc, b"".join(out), err

    def exec(self, argv, stdin=None, timeout=None, idempotent=False):
        """Run ``argv`` (no shell); return ``(rc, stdout_bytes, stderr_bytes)``.

        rc 127 means the executable is missing. ``stdin`` may be bytes or an iterable of bytes.
        """
        if isinstance(stdin, bytes):
            stdin = [stdin]
        return self._with_retries(lambda: self._run_collect(argv, stdin_source=stdin, timeout=timeout),
                                  self.retries if idempotent else 1)

    def exec_ok(self, argv, what=None, timeout=None, idempotent=True, stdin=None):
        """``exec`` that raises with a clear message unless rc == 0; returns stdout bytes."""
        rc, out, err = self.exec(argv, stdin=stdin, timeout=timeout, idempotent=idempotent)
        if rc == RC_NOT_FOUND and _looks_missing(err, argv[0]):
            raise PodTransportError(
                "%s not found in %s; it must come from the etcd image" % (argv[0], self.where())
            )
        if rc != 0:
            raise PodTransportError(
                "%s failed (rc=%s) in %s: %s"
                % (what or " ".join(argv[:3]), rc, self.where(), _text(err).strip() or _text(out).strip()[:1000])
            )
        return out

    # ---- download ------------------------------------------------------------------------

    def download(self, remote_path, local_path, timeout=None):
        """Copy a container file to ``local_path`` (mode 0600); return ``(sha256, size)``."""
        return self._with_retries(
            lambda: self._download_once(remote_path, local_path, timeout), self.retries,
            lambda exc: PodTransportError("download of %s from %s failed %d times: %s" % (remote_path, self.where(), self.retries, exc)))

    def _download_once(self, remote_path, local_path, timeout):
        directory = os.path.dirname(os.path.abspath(local_path))
        fd, tmp_path = tempfile.mkstemp(prefix=".%s." % os.path.basename(local_path), suffix=".part", dir=directory)
        try:
            os.fchmod(fd, 0o600)
            digest = hashlib.sha256()
            counter = [0]
            with os.fdopen(fd, "wb") as handle:

                def sink(data):
                    with _local_write(tmp_path):
                        handle.write(data)
                    digest.update(data)
                    counter[0] += len(data)

                rc, err = self._run(["sh", "-c", DOWNLOAD_SCRIPT, remote_path], on_stdout=sink, timeout=timeout)
                with _local_write(tmp_path):
                    handle.flush()
                    os.fsync(handle.fileno())
            remote_size, remote_sha, detail = _parse_size_and_sha(err)
            if rc != 0:
                if rc == RC_NOT_FOUND and _looks_missing(err, "sh"):
                    raise PodTransportError("sh not found in %s; hcp.etcd needs sh and coreutils there" % self.where())
                raise PodTransportError(
                    "cannot read %s in %s (rc=%s): %s" % (remote_path, self.where(), rc, detail)
                )
            if remote_size is None or remote_sha is None:
                raise TransientTransportError(
                    "no size and sha256 of %s from %s: %r" % (remote_path, self.where(), _text(err)[-300:])
                )
            local_sha = digest.hexdigest()
            if counter[0] != remote_size:
                raise TransientTransportError(
                    "short download of %s: got %d of %d bytes" % (remote_path, counter[0], remote_size)
                )
            if local_sha != remote_sha:
                raise TransientTransportError(
                    "sha256 mismatch downloading %s: local %s, pod %s (did the file change?)"
                    % (remote_path, local_sha, remote_sha)
                )
            os.rename(tmp_path, local_path)
            tmp_path = None
            return local_sha, counter[0]
        finally:
            if tmp_path and os.path.exists(tmp_path):
                os.unlink(tmp_path)

    # ---- upload --------------------------------------------------------------------------

    def upload(self, local_path, remote_path, expected_sha256=None, timeout=None):
        """Copy ``local_path`` into the container; return ``(sha256, size)`` verified on both ends."""
        return self._with_retries(
            lambda: self._upload_once(local_path, remote_path, expected_sha256, timeout), self.retries,
            lambda exc: PodTransportError("upload of %s to %s failed %d times: %s" % (local_path, self.where(), self.retries, exc)))

    def _chunks(self, handle, digest, counter):
        while True:
            block = handle.read(self.chunk_size)
            if not block:
                return
            digest.update(block)
            counter[0] += len(block)
            yield block

    def _upload_once(self, local_path, remote_path, expected_sha256, timeout):
        size = os.path.getsize(local_path)
        timeout = scaled_timeout(size, timeout or self.timeout)
        tmp_remote = remote_path + ".tmp"
        digest = hashlib.sha256()
        counter = [0]
        with open(local_path, "rb") as handle:
            rc, out, err = self._run_collect(
                ["sh", "-c", UPLOAD_SCRIPT, tmp_remote, str(size)],
                stdin_source=self._chunks(handle, digest, counter),
                timeout=timeout,
            )
        if rc != 0:
            if rc == RC_NOT_FOUND and _looks_missing(err, "sh"):
                raise PodTransportError("sh not found in %s; hcp.etcd needs sh and coreutils there" % self.where())
            self._remove_quietly(tmp_remote)
            raise PodTransportError(
                "cannot write %s in %s (rc=%s): %s" % (tmp_remote, self.where(), rc, _text(err).strip())
            )
        local_sha = digest.hexdigest()
        if counter[0] != size:
            self._remove_quietly(tmp_remote)
            raise PodTransportError("%s changed size while uploading (%d != %d)" % (local_path, counter[0], size))
        if expected_sha256 and local_sha != expected_sha256.lower():
            self._remove_quietly(tmp_remote)
            raise PodTransportError(
                "%s has sha256 %s, expected %s: the local file is not the snapshot you meant"
                % (local_path, local_sha, expected_sha256)
            )
        remote_size, remote_sha, _detail = _parse_size_and_sha(out)
        if remote_size != size:
            self._remove_quietly(tmp_remote)
            if _text(err).strip():  # tee said why (no space left, read-only file system...)
                raise PodTransportError("cannot write %s in %s: %s" % (tmp_remote, self.where(), _text(err).strip()))
            raise TransientTransportError(
                "short upload to %s: pod has %s of %d bytes" % (tmp_remote, remote_size, size)
            )
        if remote_sha != local_sha:
            self._remove_quietly(tmp_remote)
            raise TransientTransportError(
                "sha256 mismatch uploading to %s: local %s, pod %s" % (tmp_remote, local_sha, remote_sha)
            )
        self.exec_ok(["mv", "-f", "--", tmp_remote, remote_path], what="mv %s" % tmp_remote)
        return local_sha, size

    def write_bytes(self, remote_path, data, timeout=60):
        """Write a small blob (a marker, a journal) atomically and durably into the container: into a
        temporary file, fsync it, rename it over ``remote_path``, fsync the directory."""
        tmp_remote = remote_path + ".tmp"
        rc, _out, err = self.exec(
            ["sh", "-c", WRITE_SCRIPT, tmp_remote, str(len(data)), remote_path],
            stdin=data,
            timeout=timeout,
            idempotent=True,
        )
        if rc != 0:
            raise PodTransportError("cannot write %s in %s: %s" % (remote_path, self.where(), _text(err).strip()))

    def read_text(self, remote_path):
        """Contents of a small file, or None when it does not exist."""
        rc, out, _err = self.exec(["cat", remote_path], idempotent=True, timeout=60)
        if rc != 0:
            return None
        return _text(out)

    def _remove_quietly(self, remote_path):
        try:
            self.exec(["rm", "-f", "--", remote_path], idempotent=True, timeout=60)
        except PodTransportError:
            pass


class _local_write(object):
    """Context: an OSError while writing ``path`` on the controller becomes LocalDiskError (not retried)."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, _tb):
        if exc_type is not None and issubclass(exc_type, OSError):
            reason = "no space left on the controller's disk" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else str(exc)
            raise LocalDiskError(
                "cannot write %s on the controller: %s (%s); free space there or choose another destination"
                % (self.path, reason, os.strerror(exc.errno) if exc.errno else exc)
            )
        return False


def _looks_missing(err, name=None):
    """True when the exec itself failed because the executable does not exist."""
    text = _text(err)
    return text.startswith(EXEC_FAILED_PREFIX) and (
        "not found" in text.lower() or "no such file" in text.lower()
    )


def _send_stdin(ws, data):
    """Write ``data`` to the exec's stdin (channel 0) as one binary frame masked by mask_payload;
    streams without websocket-client's send_frame (test doubles) get the client's write_stdin."""
    sock = getattr(ws, "sock", None)
    if FastMaskFrame is not None and hasattr(sock, "send_frame"):
        sock.send_frame(FastMaskFrame(fin=1, opcode=ABNF.OPCODE_BINARY, data=bytes([STDIN_CHANNEL]) + data))
    else:
        ws.write_stdin(data)


def _parse_size_and_sha(output):
    """``(size, sha256, other_text)`` from ``wc -c`` and ``sha256sum`` lines mixed with messages."""
    size = sha = None
    other = []
    for line in _text(output).splitlines():
        words = line.split()
        if len(words) == 1 and words[0].isdigit() and size is None:
            size = int(words[0])
        elif len(words) == 2 and words[1] == "-" and len(words[0]) == 64 and sha is None:
            sha = words[0].lower()
        elif line.strip():
            other.append(line.strip())
    return size, sha, " ".join(other)
