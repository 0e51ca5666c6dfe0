"""One upload or download through the backup store's code, for side-by-side timing (bench/store-transfer.sh).

  store_transfer.py IMPL upload SRC_DIR s3://bucket/prefix PATH     upload_backup of a complete local backup
  store_transfer.py IMPL download s3://bucket/key DEST_DIR          download_snapshot of a stored snapshot

IMPL is a backup_store.py to load (the shipped one, or an older one from `git show REV:...`), so that two versions
run against the same store in one run. Connection: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_REGION, AWS_CA_BUNDLE (tests/cluster/s3.sh env); HCP_ETCD_AGE_RECIPIENT / HCP_ETCD_AGE_IDENTITY_FILE choose
age. Prints one JSON line: seconds of the call alone, and what it returned.
"""
import importlib.util
import json
import os
import sys
import time


def load(path):
    spec = importlib.util.spec_from_file_location("backup_store_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    impl, verb, *args = sys.argv[1:]
    backup_store = load(impl)
    identity = ""
    if os.environ.get("HCP_ETCD_AGE_IDENTITY_FILE"):
        with open(os.environ["HCP_ETCD_AGE_IDENTITY_FILE"]) as handle:
            identity = handle.read()
    recipient = os.environ.get("HCP_ETCD_AGE_RECIPIENT", "")
    url = args[1] if verb == "upload" else args[0]
    store = backup_store.BackupStore(
        url if verb == "upload" else url.rsplit("/", 1)[0], endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region=os.environ.get("AWS_REGION"), access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_key=os.environ["AWS_SECRET_ACCESS_KEY"], ca_bundle=os.environ.get("AWS_CA_BUNDLE"),
        age_recipients=[recipient] if recipient else (), age_identity=identity)
    started = time.monotonic()
    if verb == "upload":
        result = store.upload_backup(args[0], args[2])
    else:
        result = store.download_snapshot(args[0], args[1])
    print(json.dumps({"seconds": round(time.monotonic() - started, 3), "result": result}, default=str))


if __name__ == "__main__":
    main()
