"""Drive hcp.etcd's PodTransport directly, the way the modules do (benchmark helper).

  transfer.py upload   NAMESPACE POD CONTAINER LOCAL REMOTE [--chunk-size BYTES]
  transfer.py download NAMESPACE POD CONTAINER REMOTE LOCAL [--chunk-size BYTES]

The API client comes from kubernetes.core's get_api_client (KUBECONFIG / K8S_AUTH_* from the
environment), wrapped in a PodApi exactly like EtcdModule.pods; the transport gets the same
timeout/retries as EtcdModule.transport. Prints one JSON line: op, bytes, seconds, sha256.
Run it under /usr/bin/time -v to get the peak RSS of this (the controller-side) process.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# hcp.etcd from the in-repo collections path; kubernetes.core from the venv's ansible_collections.
sys.path.insert(0, os.path.join(REPO, ".collections"))

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client  # noqa: E402
from ansible_collections.hcp.etcd.plugins.module_utils.pod_transport import (  # noqa: E402
    DEFAULT_CHUNK_SIZE,
    DEFAULT_RETRIES,
    PodApi,
    PodTransport,
)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("op", choices=["upload", "download"])
    p.add_argument("namespace")
    p.add_argument("pod")
    p.add_argument("container")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    a = p.parse_args()
    transport = PodTransport(PodApi(get_api_client()), a.namespace, a.pod, a.container, timeout=1800,
                             retries=DEFAULT_RETRIES, chunk_size=a.chunk_size)
    t0 = time.monotonic()
    if a.op == "upload":
        sha, size = transport.upload(a.src, a.dst)
    else:
        sha, size = transport.download(a.src, a.dst)
    print(json.dumps({"op": a.op, "bytes": size, "seconds": round(time.monotonic() - t0, 3),
                      "sha256": sha, "chunk_size": a.chunk_size}))


if __name__ == "__main__":
    main()
