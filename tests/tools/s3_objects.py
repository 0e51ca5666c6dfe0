"""What an S3-compatible store holds, read independently of hcp.etcd's code (minio-py), and a cutting proxy.

  s3_objects.py expect-backups s3://bucket/prefix/<ns>/<cluster> [NAME...]
        exit 0 when the complete backups there (a <time>/ holding etcd-snapshot.db and its .json sidecar) are
        exactly NAME...; prints every object under the prefix
  s3_objects.py sha256 s3://bucket/key                 the object's sha256 (streamed)
  s3_objects.py get s3://bucket/key FILE              the object's bytes as stored, into FILE
  s3_objects.py cut-proxy PORT HOST:PORT LIMIT         a TCP proxy to HOST:PORT that cuts every connection once
        the client has sent LIMIT bytes on it (a network drop mid-upload); prints one line per cut
Connection: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_CA_BUNDLE (tests/cluster/s3.sh env).
"""
import hashlib
import os
import re
import socket
import sys
import threading


def client():
    import urllib3
    from minio import Minio
    scheme, host = os.environ["AWS_ENDPOINT_URL"].split("://", 1)
    http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=os.environ.get("AWS_CA_BUNDLE") or None)
    return Minio(host, os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"], secure=scheme == "https",
                 region=os.environ.get("AWS_REGION") or None, http_client=http)


def split(url):
    bucket, _sep, key = url[len("s3://"):].partition("/")
    return bucket, key


def expect_backups(url, names):
    bucket, prefix = split(url)
    objects = [(o.object_name, o.size) for o in client().list_objects(bucket, prefix=prefix.rstrip("/") + "/", recursive=True)]
    leaves = {}
    for name, size in objects:
        print("  %s (%d bytes)" % (name, size))
        rest = name[len(prefix.rstrip("/")) + 1:]
        if "/" in rest:
            d, leaf = rest.split("/", 1)
            leaves.setdefault(d, set()).add(leaf)
    complete = sorted(d for d, ls in leaves.items() if re.match(r"^\d{8}T\d{6}Z$", d) and {"etcd-snapshot.db", "etcd-snapshot.db.json"} <= ls)
    print("complete backups under %s: %s (expected %s)" % (url, " ".join(complete) or "none", " ".join(sorted(names)) or "none"))
    return 0 if complete == sorted(names) else 1


def sha256(url):
    bucket, key = split(url)
    response = client().get_object(bucket, key)
    digest = hashlib.sha256()
    try:
        for chunk in response.stream(1 << 20):
            digest.update(chunk)
    finally:
        response.close()
        response.release_conn()
    print(digest.hexdigest())
    return 0


def get(url, path):
    bucket, key = split(url)
    client().fget_object(bucket, key, path)
    return 0


def cut_proxy(port, upstream, limit):
    host, uport = upstream.rsplit(":", 1)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(port)))
    listener.listen(16)

    def pipe(src, dst, count):
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if count and sent + len(data) > limit:
                    dst.sendall(data[:max(0, limit - sent)])
                    print("cut a connection after %d bytes from the client" % limit, flush=True)
                    break
                sent += len(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    while True:
        conn, _addr = listener.accept()
        up = socket.create_connection((host, int(uport)))
        threading.Thread(target=pipe, args=(conn, up, True), daemon=True).start()
        threading.Thread(target=pipe, args=(up, conn, False), daemon=True).start()


def main(argv):
    if len(argv) >= 2 and argv[0] == "expect-backups":
        return expect_backups(argv[1], argv[2:])
    if len(argv) == 2 and argv[0] == "sha256":
        return sha256(argv[1])
    if len(argv) == 3 and argv[0] == "get":
        return get(argv[1], argv[2])
    if len(argv) == 4 and argv[0] == "cut-proxy":
        return cut_proxy(argv[1], argv[2], int(argv[3]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
