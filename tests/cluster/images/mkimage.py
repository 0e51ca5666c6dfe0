"""Write an OCI image archive (for `ctr images import`) from root-filesystem directories.

    mkimage.py --name localhost/x/y:tag --out img.tar [--cmd a --cmd b] [--env K=V] LAYER...

Each LAYER is either a directory (tarred, owners/modes/links kept, mtimes kept) or an existing
uncompressed layer tarball (*.tar, reused byte for byte so the same base layer has the same digest
in every image and containerd stores it once). Standard library only.
"""
import argparse
import hashlib
import json
import os
import shutil
import tarfile
import tempfile


def dir_to_layer(src, dst):
    with tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as tf:
        for root, dirs, files in os.walk(src):
            dirs.sort()
            files.sort()
            rel = os.path.relpath(root, src)
            if rel != ".":
                tf.add(root, arcname=rel, recursive=False)
            for f in files:
                tf.add(os.path.join(root, f), arcname=os.path.normpath(os.path.join(rel, f)), recursive=False)
            # symlinks to directories are listed in dirs but not walked
            for d in list(dirs):
                p = os.path.join(root, d)
                if os.path.islink(p):
                    tf.add(p, arcname=os.path.normpath(os.path.join(rel, d)), recursive=False)
                    dirs.remove(d)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest(), os.path.getsize(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cmd", action="append", default=[])
    ap.add_argument("--entrypoint", action="append", default=[])
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("layers", nargs="+")
    a = ap.parse_args()

    work = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(a.out)))
    try:
        blobs = os.path.join(work, "blobs", "sha256")
        os.makedirs(blobs)
        layer_descs, diff_ids = [], []
        for i, layer in enumerate(a.layers):
            tmp = os.path.join(work, "layer%d.tar" % i)
            if os.path.isdir(layer):
                dir_to_layer(layer, tmp)
            else:
                shutil.copyfile(layer, tmp)
            digest, size = sha256_file(tmp)
            os.replace(tmp, os.path.join(blobs, digest))
            layer_descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                "digest": "sha256:" + digest, "size": size})
            diff_ids.append("sha256:" + digest)

        def blob(obj):
            data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
            d = hashlib.sha256(data).hexdigest()
            with open(os.path.join(blobs, d), "wb") as f:
                f.write(data)
            return "sha256:" + d, len(data)

        config = {"architecture": "amd64", "os": "linux",
                  "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] + a.env,
                             "Cmd": a.cmd or None, "Entrypoint": a.entrypoint or None, "WorkingDir": "/"},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids},
                  "history": [{"created_by": "hcp-etcd tests/cluster/images.sh"}]}
        cd, cs = blob(config)
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                    "layers": layer_descs}
        md, ms = blob(manifest)
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
                                "platform": {"architecture": "amd64", "os": "linux"},
                                "annotations": {"io.containerd.image.name": a.name,
                                                "org.opencontainers.image.ref.name": a.name.rsplit(":", 1)[-1]}}]}
        with open(os.path.join(work, "index.json"), "w") as f:
            json.dump(index, f)
        with open(os.path.join(work, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        tmp_out = a.out + ".partial"
        with tarfile.open(tmp_out, "w") as tf:
            for p in ("oci-layout", "index.json"):
                tf.add(os.path.join(work, p), arcname=p)
            tf.add(os.path.join(work, "blobs"), arcname="blobs")
        os.replace(tmp_out, a.out)
        print(md)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
