"""What the backup store's encoding costs and saves, on real Kubernetes objects and on random bytes.

  .venv/bin/python bench/compression.py SNAPSHOT [REPS]      (bench/compression.sh makes the snapshot)

SNAPSHOT is an etcd snapshot of real Kubernetes objects as kube-apiserver stores them (bench/compression.sh
saves the hermetic cluster's own etcd, which holds the test runs' pods, events, leases, CRDs..., and the
objects of bench/k8s_objects.py created through kube-apiserver). A file of random bytes of the same size is measured beside it, alternately,
with the collection's own encode_file/decode_file (zstd level 3, and zstd + age to one recipient).
Prints a Markdown table: stored size, ratio, encode and decode MiB/s (median of REPS, default 3).
"""
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".collections"))  # make install
from ansible_collections.hcp.etcd.plugins.module_utils import backup_store  # noqa: E402
from pyrage import x25519  # noqa: E402


def measure(path, compression, recipients, identities, reps, work):
    size = os.path.getsize(path)
    enc, dec, stored = [], [], 0
    for _rep in range(reps):
        out, back = os.path.join(work, "stored"), os.path.join(work, "back")
        t = time.monotonic()
        plain, _s, stored = backup_store.encode_file(path, out, compression, recipients)
        enc.append(size / (time.monotonic() - t) / 1048576)
        t = time.monotonic()
        got = backup_store.decode_file(out, back, backup_store.encoding_name(compression, recipients), identities)
        dec.append(size / (time.monotonic() - t) / 1048576)
        assert got == plain
    return stored, statistics.median(enc), statistics.median(dec)


def main():
    snapshot = sys.argv[1]
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    size = os.path.getsize(snapshot)
    identity = x25519.Identity.generate()
    with tempfile.TemporaryDirectory() as work:
        rand = os.path.join(work, "random.db")
        with open(rand, "wb") as handle:
            handle.write(os.urandom(size))
        print("# The backup store's encoding (bench/compression.py, median of %d, one run, this machine)\n" % reps)
        print("%s: %d bytes, an etcd snapshot of real Kubernetes objects; random bytes of the same size beside it.\n"
              % (os.path.basename(snapshot), size))
        print("| data | encoding | size | stored | ratio | encode MiB/s | decode MiB/s |")
        print("|---|---|---|---|---|---|---|")
        for compression, recipients in (("zstd", []), ("zstd", [identity.to_public()]), ("none", [identity.to_public()])):
            for label, path in (("Kubernetes objects (etcd snapshot)", snapshot), ("random bytes", rand)):
                stored, enc, dec = measure(path, compression, recipients, [identity], reps, work)
                print("| %s | %s | %.1f MiB | %.1f MiB | %.2fx | %.0f | %.0f |" % (
                    label, backup_store.encoding_name(compression, recipients), size / 1048576.0, stored / 1048576.0,
                    float(size) / stored, enc, dec))


if __name__ == "__main__":
    main()
