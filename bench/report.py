"""results.jsonl -> results.md (one table per question) and results.png (the same numbers).

  report.py OUT.md OUT.png RESULTS.jsonl [MORE.jsonl ...]   (several runs are merged)
"""
import collections
import datetime
import json
import statistics
import sys

# sides of older runs that are no longer measured (their change is now in pod_transport.py itself)
OBSOLETE_TOOLS = ("ours-1frame", "backup.yml-1frame")
XFER_TOOLS = ("ours", "kubectl-cp", "k8s_cp")
# the sides of the restore comparison, in table order (restore.yml first: every ratio is ours / another)
RESTORE_TOOLS = collections.OrderedDict([
    ("restore.yml", "playbooks/restore.yml"), ("restore.yml-all-at-once", "restore.yml, etcd stopped all at once"),
    ("documented", "documented procedure"),
    ("correct", "correct by hand"), ("floor", "floor")])


def restore_sides(rows):
    """RESTORE_TOOLS plus the earlier revisions of restore.yml measured in the same run (``restore.yml@REV``,
    bench/run.sh), right after restore.yml, so that ours / an earlier revision is a ratio of the table."""
    sides = collections.OrderedDict()
    for tool, label in RESTORE_TOOLS.items():
        sides[tool] = label
        if tool == "restore.yml":
            for rev in sorted({r["tool"] for r in rows if r["tool"].startswith("restore.yml@")}):
                sides[rev] = "restore.yml at %s" % rev.split("@", 1)[1]
    return sides


def load(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def mmm(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def fmt(t, unit="", digits=1):
    if t is None:
        return "n/a"
    med, lo, hi = t
    return "%.*f%s (%.*f–%.*f)" % (digits, med, unit, digits, lo, digits, hi)


def ratio(a, b):
    if a is None or b is None or not b[0]:
        return "n/a"
    return "%.2fx" % (a[0] / b[0])


def iso(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")


def main():
    out_md, out_png = sys.argv[1], sys.argv[2]
    rows = [r for path in sys.argv[3:] for r in load(path) if r.get("tool") not in OBSOLETE_TOOLS]
    metas = [r for r in rows if r.get("section") == "meta"] or [{}]
    meta = dict(metas[0])
    if len(metas) > 1:
        meta["run"] = " + ".join(m.get("run", "?").rsplit("/", 1)[-1] for m in metas)
        meta["wall_seconds"] = "+".join(str(m.get("wall_seconds", "?")) for m in metas)
    md = ["# hcp.etcd benchmark results", ""]
    md.append("Run `%s`, %s repetition(s) per side, alternating A,B,A,B; bench wall time %s s%s. "
              "Cells: median (min–max). Ratios: median A / median B of the same run." % (
                  meta.get("run", "?").rsplit("/", 1)[-1] if "+" not in meta.get("run", "") else meta["run"],
                  meta.get("reps", "?"), meta.get("wall_seconds", "?"),
                  " — SMOKE (tiny sizes, not a measurement)" if str(meta.get("smoke")) == "1" else ""))
    md.append("")
    chart = {}

    # 1. restore
    rs = [r for r in rows if r.get("section") == "restore"]
    if rs:
        sides = restore_sides(rs)
        tools = [t for t in sides if any(r["tool"] == t for r in rs)]
        md += ["## 1. Restore of 3 members: API downtime (first API Deployment at 0 → all three 3/3 Available)", "",
               "Seconds, median (min–max). ratio = median of restore.yml / median of the other; minus floor = median "
               "of restore.yml − median of the floor. Verify: `etcd-data verify --expect A --members 3` after each "
               "run (every member by data).", "",
               "| etcd data | " + " | ".join(sides[t] for t in tools) + " | "
               + " | ".join("ours / %s" % sides[t] for t in tools[1:] if t != "floor")
               + (" | ours minus floor" if "floor" in tools else "") + " |",
               "|---|" + "---|" * (len(tools) + len([t for t in tools[1:] if t != "floor"]) + ("floor" in tools))]
        verdicts = ["", "| etcd data | " + " | ".join("verify %s" % sides[t] for t in tools) + " |",
                    "|---|" + "---|" * len(tools)]
        for size in sorted({r["size_mib"] for r in rs}):
            by_tool = dict((t, [r for r in rs if r["size_mib"] == size and r["tool"] == t]) for t in tools)
            stats = dict((t, mmm([r.get("downtime_seconds") for r in by_tool[t]])) for t in tools)
            cells = []
            for t in tools:
                never = sum(1 for r in by_tool[t] if r.get("downtime_seconds") is None)
                cells.append("%s s%s" % (fmt(stats[t]), " (+%d never up)" % never if never else ""))
            cells += ["**%s**" % ratio(stats["restore.yml"], stats[t]) for t in tools[1:] if t != "floor"]
            if "floor" in tools:
                ours, floor = stats.get("restore.yml"), stats["floor"]
                cells.append("**%+.1f s**" % (ours[0] - floor[0]) if ours and floor else "n/a")
            md.append("| %s MiB | %s |" % (size, " | ".join(cells)))
            verdicts.append("| %s MiB | %s |" % (size, " | ".join(
                ", ".join("%s %d/%d" % (k, v, len(by_tool[t])) for k, v in sorted(collections.Counter(r["verify"] for r in by_tool[t]).items()))
                for t in tools)))
            chart.setdefault("restore", ([sides[t] for t in tools], []))[1].append(("%s MiB" % size, [stats[t] for t in tools]))
        md += verdicts
        md.append("")

        # 4. phases, of restore.yml and of each earlier revision measured beside it
        ours = [t for t in tools if t.startswith("restore.yml")]
        phases = collections.OrderedDict()
        for r in (r for r in rs if r["tool"] in ours):
            p = r.get("phases_reached_at") or {}
            if not p:
                continue
            items = sorted(((iso(v), k) for k, v in p.items() if v), key=lambda x: x[0])
            prev_t, prev_k = items[0]
            for t, name in items[1:]:
                phases.setdefault((r["size_mib"], "%s → %s" % (prev_k, name)), {}).setdefault(r["tool"], []).append(
                    (t - prev_t).total_seconds())
                prev_t, prev_k = t, name
        if phases:
            md += ["## 4. Where restore.yml's time goes (phases_reached_at of the run reports, seconds, 1 s resolution)", "",
                   "| etcd data | phase (from → to) | " + " | ".join(sides[t] for t in ours) + " |",
                   "|---|---|" + "---|" * len(ours)]
            for (size, name), by_tool in sorted(phases.items(), key=lambda kv: kv[0][0]):
                md.append("| %s MiB | %s | %s |" % (size, name.replace("at_", ""), " | ".join(
                    "%s s" % fmt(mmm(by_tool[t]), digits=0) if t in by_tool else "n/a" for t in ours)))
            md.append("")

    # 2. transfer
    ts = [r for r in rows if r.get("section") == "transfer" and r.get("tool") in XFER_TOOLS]
    if ts:
        tools = [t for t in XFER_TOOLS if any(r.get("tool") == t for r in ts)]
        md += ["## 2. Snapshot transfer to/from the etcd container (MiB/s of the whole command, peak RSS MiB; sha256 checked)", "",
               "| dir | size | " + " | ".join(tools) + " | ours/kubectl-cp |",
               "|---|---|" + "---|" * len(tools) + "---|"]
        for d in ("up", "down"):
            for size in sorted({r["size_mib"] for r in ts}):
                cells, med = [], {}
                for t in tools:
                    sel = [r for r in ts if r["tool"] == t and r["dir"] == d and r["size_mib"] == size]
                    ok = [r for r in sel if r.get("rc") == 0 and r.get("sha_ok") == "true"]
                    bad = [r for r in sel if "skipped" not in r and r not in ok]
                    skipped = [r for r in sel if "skipped" in r]
                    m = mmm([r["mib_s"] for r in ok])
                    rss = mmm([r["maxrss_mib"] for r in ok])
                    med[t] = m
                    cell = "%s MiB/s, %s MiB" % (fmt(m), "%.0f" % rss[1 - 1] if rss else "n/a") if m else "—"
                    if rss:
                        cell = "%s MiB/s · RSS %.0f" % (fmt(m), rss[2])
                    inner = mmm([size / r["inner_seconds"] for r in ok if r.get("inner_seconds")])
                    if inner:
                        cell += " · in-process %.1f" % inner[0]
                    if bad:
                        cell += " · %d FAILED%s" % (len(bad), " (timeout)" if any(r.get("rc") == 124 for r in bad) else "")
                    if skipped:
                        cell += " · skipped (%s)" % skipped[0]["skipped"]
                    cells.append(cell)
                    chart.setdefault("xfer-%s" % d, {}).setdefault(t, []).append((size, m[0] if m else None))
                md.append("| %s | %s MiB | %s | %s |" % (
                    "pod→local" if d == "down" else "local→pod", size, " | ".join(cells),
                    ratio(med.get("ours"), med.get("kubectl-cp"))))
        md += ["", "MiB/s = size / wall time of the whole command (process start-up, imports and, for ours, the sha256 "
               "checks of both ends included); in-process = the transfer call alone. ours = PodTransport as shipped; "
               "RSS = max over repetitions of `/usr/bin/time -v` Maximum resident set size "
               "(for k8s_cp: the largest process of the `ansible` ad-hoc run).", ""]

    # 3. backup (backup.yml@REV, when the run has it: the same playbook of an earlier revision, side by side)
    bs = [r for r in rows if r.get("section") == "backup"]
    if bs:
        revs = sorted({r["tool"] for r in bs if r["tool"].startswith("backup.yml@")})
        md += ["## 3. Online backup wall time", "",
               "| etcd data | snapshot | playbooks/backup.yml | " + "".join("%s | " % t for t in revs) + "bare script | ratio |"
               + "".join(" ours / %s |" % t for t in revs),
               "|---|---|---|" + "---|" * len(revs) + "---|---|" + "---|" * len(revs)]
        for size in sorted({r["size_mib"] for r in bs}):
            med = dict((t, mmm([r["seconds"] for r in bs if r["size_mib"] == size and r["tool"] == t and r["rc"] == 0]))
                       for t in ["backup.yml", "bare-script"] + revs)
            a, b = med["backup.yml"], med["bare-script"]
            snap = max([r.get("snapshot_mib", 0) for r in bs if r["size_mib"] == size and r["tool"] == "backup.yml"] or [0])
            md.append("| %s MiB | %s MiB | %s s | %s%s s | **%s** |%s" % (
                size, snap, fmt(a), "".join("%s s | " % fmt(med[t]) for t in revs), fmt(b), ratio(a, b),
                "".join(" **%s** |" % ratio(a, med[t]) for t in revs)))
            chart.setdefault("backup", (["backup.yml"] + revs + ["bare script"], []))[1].append(
                ("%s MiB" % size, [a] + [med[t] for t in revs] + [b]))
        md.append("")

    open(out_md, "w").write("\n".join(md) + "\n")
    print("\n".join(md))
    try:
        plot(chart, out_png)
    except Exception as exc:  # pylint: disable=broad-except
        print("no chart: %s" % exc)


def plot(chart, out_png):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in ("restore", "xfer-up", "xfer-down", "backup") if p in chart]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2))
    if len(panels) == 1:
        axes = [axes]
    for ax, name in zip(axes, panels):
        if name in ("restore", "backup"):
            tool_labels, groups = chart[name]
            labels = [g[0] for g in groups]
            xs = range(len(labels))
            width = 0.8 / len(tool_labels)
            for idx, lab in enumerate(tool_labels):
                off = (idx - (len(tool_labels) - 1) / 2.0) * width
                med = [g[1][idx][0] if g[1][idx] else 0 for g in groups]
                err = [[(g[1][idx][0] - g[1][idx][1]) if g[1][idx] else 0 for g in groups],
                       [(g[1][idx][2] - g[1][idx][0]) if g[1][idx] else 0 for g in groups]]
                ax.bar([i + off for i in xs], med, width, yerr=err, capsize=3, label=lab)
            ax.set_xticks(list(xs))
            ax.set_xticklabels(labels)
            ax.set_ylabel("seconds (median, min–max)")
            ax.set_title("restore: API downtime" if name == "restore" else "online backup wall time")
        else:
            for tool, pts in chart[name].items():
                pts = [(s, v) for s, v in pts if v is not None]
                if pts:
                    agg = collections.OrderedDict()
                    for s, v in pts:
                        agg.setdefault(s, []).append(v)
                    ax.plot(list(agg), [statistics.median(v) for v in agg.values()], marker="o", label=tool)
            ax.set_xscale("log", base=2)
            ax.set_xlabel("file MiB")
            ax.set_ylabel("MiB/s (median)")
            ax.set_title("transfer " + ("local→pod" if name == "xfer-up" else "pod→local"))
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)


if __name__ == "__main__":
    main()
