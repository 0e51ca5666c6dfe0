#!/usr/bin/env bash
# The backup store's download, two versions of plugins/module_utils/backup_store.py side by side in one run against
# the MinIO of tests/cluster/s3.sh (TLS), alternating, each call one process under /usr/bin/time -v.
#
#   bench/store-transfer.sh OLD_REV            e.g. 6ff88d8^ (the download through a scratch copy) against the tree;
#                                              the backup is uploaded once per encoding by the tree's code
#
# Env: STORE_BENCH_MIB (512: a random etcd-snapshot.db, the case compression cannot help), STORE_BENCH_REPS (5),
#      STORE_BENCH_ENCODINGS ("zstd zstd+age"). Every download is checked: the file's sha256 equals the sidecar's.
# Prints a Markdown table (median, min-max of wall time, peak RSS, CPU) and keeps the raw lines in $W/results.jsonl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
old_rev=${1:?usage: $0 OLD_REV}
mib=${STORE_BENCH_MIB:-512} reps=${STORE_BENCH_REPS:-5} encodings=${STORE_BENCH_ENCODINGS:-zstd zstd+age}
export PATH=$repo/.venv/bin:$PATH PYTHONPATH=$repo/.collections
W=$(mktemp -d /tmp/hcp-etcd-store-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
tests/cluster/s3.sh up >/dev/null
# shellcheck disable=SC1090
. "$(tests/cluster/s3.sh env)"
git show "$old_rev:plugins/module_utils/backup_store.py" > "$W/old.py"
cp plugins/module_utils/backup_store.py "$W/new.py"
python3 -c "
import pyrage, sys
identity = pyrage.x25519.Identity.generate()
open(sys.argv[1], 'w').write(str(identity) + chr(10))
print(identity.to_public())" "$W/identity.txt" > "$W/recipient.txt"

stamp=20261130T000000Z src=$W/backup/$stamp
mkdir -p "$src"
head -c "${mib}M" /dev/urandom > "$src/etcd-snapshot.db"
python3 - "$src/etcd-snapshot.db" <<'PY'
import hashlib, json, os, sys
from ansible_collections.hcp.etcd.plugins.module_utils import etcd_cli
path = sys.argv[1]
digest = hashlib.sha256()
with open(path, "rb") as handle:
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
facts = dict((k, None) for k in etcd_cli.SIDECAR_KEYS)
facts.update(sha256=digest.hexdigest(), size=os.path.getsize(path), method="save", needs_skip_hash_check=False)
with open(path + ".json", "w") as handle:
    json.dump(etcd_cli.build_sidecar(**facts), handle)
PY
want=$(sha256sum "$src/etcd-snapshot.db" | cut -d' ' -f1)
: > "$W/results.jsonl"

for enc in $encodings; do
  if [ "$enc" = zstd+age ]; then export HCP_ETCD_AGE_RECIPIENT; HCP_ETCD_AGE_RECIPIENT=$(cat "$W/recipient.txt")
    export HCP_ETCD_AGE_IDENTITY_FILE=$W/identity.txt
  else unset HCP_ETCD_AGE_RECIPIENT HCP_ETCD_AGE_IDENTITY_FILE; fi
  prefix=s3://$HCP_ETCD_S3_BUCKET/store-bench-$enc
  python3 bench/store_transfer.py "$W/new.py" upload "$src" "$prefix" "bench/$stamp" > /dev/null
  url=$prefix/bench/$stamp/etcd-snapshot.db
  for rep in $(seq 1 "$reps"); do
    for side in old new; do
      rm -rf "$W/dest"
      /usr/bin/time -v -o "$W/time" python3 bench/store_transfer.py "$W/$side.py" download "$url" "$W/dest" > "$W/out"
      got=$(sha256sum "$W/dest/etcd-snapshot.db" | cut -d' ' -f1)
      python3 - "$W/time" "$W/out" "$side" "$enc" "$rep" "$mib" "$([ "$got" = "$want" ] && echo true || echo false)" \
        >> "$W/results.jsonl" <<'PY'
import json, re, sys
time_file, out, side, enc, rep, mib, ok = sys.argv[1:]
t = open(time_file).read()
def field(name):
    return re.search(re.escape(name) + r": (.*)", t).group(1).strip()
wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")
print(json.dumps(dict(side=side, encoding=enc, rep=int(rep), mib=int(mib), sha_ok=ok == "true",
                      wall=round(float(wall[-1]) + 60 * float(wall[-2]), 2),
                      call=json.loads(open(out).read().splitlines()[-1])["seconds"],
                      cpu=round(float(field("User time (seconds)")) + float(field("System time (seconds)")), 2),
                      rss_mib=round(int(field("Maximum resident set size (kbytes)")) / 1024, 1))))
PY
    done
  done
done

python3 - "$W/results.jsonl" "$old_rev" "$mib" "$reps" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
old_rev, mib, reps = sys.argv[2:]
print("Store download of a %s MiB random snapshot, %s repetitions per side alternating old/new, %s vs the tree:" % (mib, reps, old_rev))
print()
print("| encoding | | old (%s) | new | new / old |" % old_rev)
print("|---|---|---|---|---|")
for enc in dict.fromkeys(r["encoding"] for r in rows):
    by = dict((s, [r for r in rows if r["encoding"] == enc and r["side"] == s]) for s in ("old", "new"))
    assert all(r["sha_ok"] for s in by for r in by[s]), "a download delivered a wrong file"
    for key, label in (("wall", "wall time of the process"), ("call", "download_snapshot alone"),
                       ("cpu", "CPU (user + system)"), ("rss_mib", "peak RSS, MiB")):
        med = dict((s, statistics.median(r[key] for r in by[s])) for s in by)
        rng = dict((s, (min(r[key] for r in by[s]), max(r[key] for r in by[s]))) for s in by)
        print("| %s | %s | %.2f (%.2f-%.2f) | %.2f (%.2f-%.2f) | **%.2fx** |" % (
            enc, label, med["old"], rng["old"][0], rng["old"][1], med["new"], rng["new"][0], rng["new"][1],
            med["new"] / med["old"] if med["old"] else float("nan")))
print()
print("Every download's sha256 equalled the sidecar's.")
PY
