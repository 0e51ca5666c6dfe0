"""Bad snapshots for the refusals scenario, made from one good backup (etcd-snapshot.db + .json sidecar).

    make_snapshots.py GOOD_SNAPSHOT OUT_DIR VOLUME_BYTES

Writes into OUT_DIR, each with a sidecar unless said otherwise:
  truncated.db      the first half of the file; sidecar unchanged (size differs)
  flipped.db        one byte in the middle inverted; sidecar unchanged (sha256 differs)
  no-sidecar.db     the file without its sidecar
  other-cluster.db  the file as is; sidecar names cluster_name another-cluster
  oversized.db      the database padded (sparse) to more than VOLUME_BYTES / 2, with a fresh sha256
                    trailer and a matching sidecar: a consistent snapshot too large for the volume
Standard library only.
"""
import hashlib
import json
import os
import shutil
import sys

TRAILER = 32
ALIGN = 512


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_sidecar(path, sidecar):
    with open(path + ".json", "w") as handle:
        json.dump(sidecar, handle, indent=2, sort_keys=True)
    os.chmod(path + ".json", 0o600)


def main(good, out, volume_bytes):
    with open(good + ".json") as handle:
        sidecar = json.load(handle)
    size = os.path.getsize(good)
    os.makedirs(out, mode=0o700, exist_ok=True)

    def copy(name):
        path = os.path.join(out, name)
        shutil.copyfile(good, path)
        os.chmod(path, 0o600)
        return path

    path = copy("truncated.db")
    with open(path, "r+b") as handle:
        handle.truncate(size // 2)
    write_sidecar(path, sidecar)

    path = copy("flipped.db")
    with open(path, "r+b") as handle:
        handle.seek(size // 2)
        byte = handle.read(1)
        handle.seek(size // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    write_sidecar(path, sidecar)

    copy("no-sidecar.db")

    path = copy("other-cluster.db")
    write_sidecar(path, dict(sidecar, cluster_name="another-cluster"))

    # Database (without the old trailer), a sparse hole up to more than half the volume (kept
    # 512-aligned, as `snapshot save` output is), then the sha256 trailer of all that.
    path = copy("oversized.db")
    padded = (volume_bytes // 2 // ALIGN + 1) * ALIGN
    with open(path, "r+b") as handle:
        handle.truncate(size - TRAILER)
        handle.truncate(padded)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    with open(path, "ab") as handle:
        handle.write(digest.digest())
    write_sidecar(path, dict(sidecar, sha256=sha256(path), size=os.path.getsize(path)))
    print(json.dumps({name: os.path.getsize(os.path.join(out, name)) for name in sorted(os.listdir(out))}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
