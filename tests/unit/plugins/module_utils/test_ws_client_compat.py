# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PodTransport against the real kubernetes.stream WSClient (only its socket is fake).

Guards the assumptions about the installed kubernetes client: binary frames keep non-UTF-8
bytes, the exit status arrives on channel 3, stdin goes out as binary frames on channel 0,
and v5 streams can half-close stdin.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import json
import socket
from types import SimpleNamespace

import pytest

from ansible_collections.hcp.etcd.plugins.module_utils.pod_transport import PodTransport

ws_client = pytest.importorskip("kubernetes.stream.ws_client")
ABNF = pytest.importorskip("websocket").ABNF


class FakeSocket(object):
    def __init__(self, frames, until_stdin_closed=False):
        self.frames = list(frames)
        self.connected = True
        self.sent = []
        self.sock, self._peer = socket.socketpair()
        if not until_stdin_closed:
            self._peer.send(b"!")  # readable for poll() from now on (the byte is never read)

    def recv_data_frame(self, _control):
        if self.frames:
            return ABNF.OPCODE_BINARY, SimpleNamespace(data=self.frames.pop(0))
        self.connected = False
        return ABNF.OPCODE_CLOSE, SimpleNamespace(data=b"")

    def send(self, payload, opcode=None):
        self.sent.append((opcode, payload))
        if payload == bytes([255, 0]):
            self._peer.send(b"!")  # the "process" answers once stdin is closed

    def settimeout(self, _timeout):
        return None

    def close(self, **_kwargs):
        self.connected = False
        self.sock.close()
        self._peer.close()


def real_client(frames, until_stdin_closed=False):
    client = object.__new__(ws_client.WSClient)
    client._connected = True
    client._channels = {}
    client._closed_channels = set()
    client.subprotocol = ws_client.V5_CHANNEL_PROTOCOL
    client.binary = True
    client.newline = b"\n"
    client._all = io.BytesIO()
    client._returncode = None
    client.sock = FakeSocket(frames, until_stdin_closed)
    return client


def make(frames, until_stdin_closed=False):
    made = []

    def stream_fn(_pod, _ns, **kwargs):
        assert kwargs["binary"] is True
        made.append(real_client(frames, until_stdin_closed))
        return made[-1]

    return PodTransport(SimpleNamespace(), "ns", "p", "c", stream_fn=stream_fn), made


def test_binary_stdout_and_exit_code_through_real_wsclient():
    payload = bytes(range(256)) * 4
    status = {"status": "Failure", "reason": "NonZeroExitCode", "message": "exit 2",
              "details": {"causes": [{"reason": "ExitCode", "message": "2"}]}}
    transport, made = make([b"\x01" + payload[:500], b"\x01" + payload[500:], b"\x02oops", b"\x03" + json.dumps(status).encode()])
    rc, out, err = transport.exec(["cat", "/x"])
    assert (rc, out, err) == (2, payload, b"oops")
    assert not isinstance(made[0]._all, io.BytesIO)  # nothing is kept twice in memory


def test_stdin_is_sent_as_binary_frames_and_half_closed():
    transport, made = make([b"\x03" + json.dumps({"status": "Success"}).encode()], until_stdin_closed=True)
    rc, _out, _err = transport.exec(["sh", "-c", "head -c 3 > /x"], stdin=[b"\xff\x00\x01"])
    assert rc == 0
    sent = made[0].sock.sent
    assert sent[0] == (ABNF.OPCODE_BINARY, b"\x00\xff\x00\x01")
    assert sent[-1] == (ABNF.OPCODE_BINARY, bytes([255, 0]))  # v5 close of stdin
