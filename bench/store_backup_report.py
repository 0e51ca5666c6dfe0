"""The table of bench/store-backup.sh from its results.jsonl (one line per backup and restore).

Usage: store_backup_report.py RESULTS.jsonl MIB REPS OBJECTS > store-backup.md
"""

from __future__ import absolute_import, division, print_function

import collections
import json
import statistics
import sys


def cell(values):
    return "%.1f (%.1f-%.1f)" % (statistics.median(values), min(values), max(values))


def ratio(rows, base, key):
    if not base:
        return "-"
    return "%.2fx" % (statistics.median([r[key] for r in rows]) / statistics.median([r[key] for r in base]))


def main():
    path, mib, reps, count = sys.argv[1:5]
    by = collections.OrderedDict()
    for line in open(path):
        row = json.loads(line)
        by.setdefault((row["data"], row["encoding"]), []).append(row)
    print("# Backup to and restore from the S3 store, per encoding (bench/store-backup.sh, one run, this machine)\n")
    print("A HighlyAvailable control plane per data set holding %s MiB of etcd values: copies of the local cluster's\n"
          "/registry/ with %s generated Kubernetes objects, as kube-apiserver stored them, packed into values of up to\n"
          "512 KiB; or random 512 KiB values. Median (min-max) of %s repetitions, encodings alternating;\n"
          "backup = playbooks/backup.yml with the store (snapshot, checks, upload); restore = playbooks/restore.yml from\n"
          "the s3:// URL (download, decode, every member restored and verified). Verify: etcd-data digest of every member\n"
          "equal to before the backup.\n" % (mib, count, reps))
    print("| data | encoding | snapshot | stored | ratio | backup s | restore s | backup / none | restore / none | verify |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (data, enc), rows in by.items():
        base = by.get((data, "none"))
        snap = statistics.median(r["snapshot"] for r in rows) / 1048576.0
        stored = statistics.median(r["stored"] for r in rows) / 1048576.0
        print("| %s | %s | %.1f MiB | %.1f MiB | %.2fx | %s | %s | %s | %s | OK %d/%d |" % (
            data, enc, snap, stored, snap / stored if stored else 0, cell([r["backup_s"] for r in rows]),
            cell([r["restore_s"] for r in rows]), ratio(rows, base, "backup_s"), ratio(rows, base, "restore_s"),
            sum(r["verify"] == "OK" for r in rows), len(rows)))


if __name__ == "__main__":
    main()
