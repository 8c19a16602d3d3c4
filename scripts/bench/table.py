#!/usr/bin/env python3
"""Render the results of scripts/bench.sh: medians per cell, ratios, and whether each target is
met; prints a plain table and writes the same table as Markdown.

usage: table.py META.tsv ROWS.tsv RESULTS.tsv OUT.md

META.tsv    KEY<TAB>TEXT lines (date, machine, versions, mode) for the Markdown header.
ROWS.tsv    ROW<TAB>LABEL<TAB>CHECK<TAB>LIMIT<TAB>TARGET, in table order. CHECK is one of
            ratio (totofs/native <= LIMIT), step (the step's own phase under totofs,
            from TOTOFS_STATS=1, / native <= LIMIT), speedup (in-toto-run/totofs >= LIMIT),
            abs (totofs seconds <= LIMIT), bytes (peak RSS per file <= LIMIT).
Every row where totofs is slower than in-toto-run is marked: the target there is "never".
RESULTS.tsv ROW<TAB>COLUMN<TAB>METRIC<TAB>VALUE, COLUMN in native/totofs/peer; METRIC seconds,
            exit_seconds, rss_kib or error (VALUE is then the reason).
"""

import statistics
import sys
from collections import defaultdict

COLS = ("native", "totofs", "peer")
HEAD = ("workload", "native", "totofs", "in-toto-run", "totofs/native", "in-toto-run/totofs",
        "target", "met")


def read_tsv(path, width):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= width:
                rows.append(parts[:width - 1] + ["\t".join(parts[width - 1:])])
    return rows


def fmt_time(s):
    if s is None:
        return None
    return f"{s * 1000:.0f} ms" if abs(s) < 1 else f"{s:.2f} s"


def fmt_counts(text):
    m, _, p = text.partition(" ")
    return f"{m} materials and {p} products"


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}x"


def main(meta_path, rows_path, results_path, out_path):
    meta = read_tsv(meta_path, 2)
    rows = read_tsv(rows_path, 5)
    values = defaultdict(list)   # (row, col, metric) -> [float]
    errors = {}                  # (row, col) -> first reason
    artifacts = {}               # (row, col) -> "MATERIALS PRODUCTS" of the last link
    phases = defaultdict(list)   # (row, col) -> [[before, step, after] seconds per run]
    for row, col, metric, value in read_tsv(results_path, 4):
        if metric == "artifacts":
            artifacts[(row, col)] = value.strip()
        elif metric == "phases":
            try:
                phases[(row, col)].append([float(x) for x in value.split()])
            except ValueError:
                pass
        elif metric == "error":
            errors.setdefault((row, col), value.strip() or "failed")
        else:
            try:
                values[(row, col, metric)].append(float(value) if metric != "sizes" else 0.0)
            except ValueError:
                pass
            if metric == "sizes":
                values[(row, col, "sizes_text")] = value.split()

    def median(row, col, metric="seconds"):
        v = values.get((row, col, metric))
        return statistics.median(v) if v else None

    def runs(row, col, metric="seconds"):
        return len(values.get((row, col, metric), []))

    notes = defaultdict(list)    # (col, reason) -> [row labels]
    slower = []                  # labels of the rows where in-toto-run beat totofs
    table = []
    seen = set()
    for rid, label, check, limit, target in rows:
        if rid in seen:
            continue
        seen.add(rid)
        limit = float(limit)
        cells, nums = {}, {}
        if check == "bytes":
            small, big, goal = (int(x) for x in values.get((rid, "meta", "sizes_text"), ["0", "0", "0"]))
            for col in COLS:
                if col == "native":
                    cells[col] = "—"
                    continue
                lo = median(f"rss_{small}", col, "rss_kib")
                hi = median(f"rss_{big}", col, "rss_kib")
                err = errors.get((f"rss_{big}", col)) or errors.get((f"rss_{small}", col))
                if hi is None:
                    cells[col] = "n/a"
                    if err:
                        notes[(col, err)].append(label)
                    continue
                peak = hi * 1024
                if big != goal and lo is not None and big > small:
                    slope = (hi - lo) * 1024 / (big - small)
                    peak = hi * 1024 + slope * (goal - big)
                per_file = peak / goal
                nums[col] = per_file
                cells[col] = f"{hi / 1024:.0f} MiB @{big:,}: {per_file:.0f} B/file"
            ratio = None
            speed = nums["peer"] / nums["totofs"] if "peer" in nums and "totofs" in nums else None
            metric_value = nums.get("totofs")
        else:
            for col in COLS:
                m = median(rid, col)
                err = errors.get((rid, col))
                if m is not None and not err:
                    nums[col] = m
                    cells[col] = fmt_time(m)
                elif err:
                    cells[col] = "n/a"
                    notes[(col, err)].append(label)
                else:
                    cells[col] = "—"
            ratio = nums["totofs"] / nums["native"] if "totofs" in nums and nums.get("native") else None
            speed = nums["peer"] / nums["totofs"] if "peer" in nums and nums.get("totofs") else None
            split = phases.get((rid, "totofs"))
            if check == "ratio":
                metric_value = ratio
            elif check == "step":
                metric_value = None
                if split and nums.get("native") and "totofs" in nums:
                    metric_value = statistics.median(p[1] for p in split) / nums["native"]
            elif check == "speedup":
                metric_value = speed
            else:
                metric_value = nums.get("totofs")
        if metric_value is None:
            met = "—"
        elif check == "speedup":
            met = "yes" if metric_value >= limit else "NO"
        else:
            met = "yes" if metric_value <= limit else "NO"
        if check in ("speedup", "abs", "bytes"):
            ratio_text = "—" if check != "abs" or ratio is None else fmt_ratio(ratio)
        else:
            ratio_text = fmt_ratio(ratio)
        # A recorder that is fast because it recorded less is no win: flag differing links.
        arow = "latency_raw" if rid == "latency" else rid
        if check == "bytes":
            arow = f"rss_{big}"
        a_t, a_p = artifacts.get((arow, "totofs")), artifacts.get((arow, "peer"))
        if a_t and a_p and a_t != a_p:
            met = "?" if met == "yes" else met
            notes[("info", f"links differ: totofs recorded {fmt_counts(a_t)}, "
                           f"in-toto-run {fmt_counts(a_p)}")].append(label)
        if check == "bytes":
            for col in ("totofs", "peer"):
                lo = median(f"rss_{small}", col, "rss_kib")
                if lo is not None and median(f"rss_{big}", col, "rss_kib") is None:
                    name = "totofs" if col == "totofs" else "in-toto-run"
                    notes[("info", f"{name} peak RSS at {small:,} files: {lo / 1024:.0f} MiB")].append(label)
        speed_text = fmt_ratio(speed)
        if speed is not None and speed < 1 and check != "bytes":
            # One of the targets: totofs is never slower than in-toto-run.
            speed_text += " (totofs slower)"
            slower.append(label)
        if check == "step" and metric_value is not None:
            ratio_text += f" (step {metric_value:.2f}x)"
        table.append((label, cells["native"], cells["totofs"], cells["peer"], ratio_text,
                      speed_text, target, met))
        split = phases.get((rid, "totofs"))
        if split and check in ("ratio", "step") and nums.get("native"):
            before, step, after = (statistics.median(p[i] for p in split) for i in range(3))
            notes[("info", f"totofs's time: {fmt_time(before)} before the step (listing and stat-ing "
                           f"the materials), the step itself {fmt_time(step)} under the overlay "
                           f"({step / nums['native']:.2f}x native), {fmt_time(after)} after it "
                           f"(unmount, hashing, sealing, signing and writing the link and trace)")
                  ].append(label)
        if rid == "latency":
            exits = [f"{name} exited {fmt_time(e)}" for name, e in
                     (("totofs", median(rid, "totofs", "exit_seconds")),
                      ("in-toto-run", median(rid, "peer", "exit_seconds"))) if e is not None]
            if exits:
                notes[("info", " and ".join(exits) + " after the step's last act")].append(label)

    # Plain table on stdout.
    widths = [max(len(str(r[i])) for r in table + [HEAD]) for i in range(len(HEAD))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
    print()
    for key, text in meta:
        print(f"{key}: {text}")
    print()
    print(line(HEAD))
    print(line(["-" * w for w in widths]))
    for r in table:
        print(line(r))
    note_lines = []
    if slower:
        note_lines.append(f"totofs slower than in-toto-run (target: never): {'; '.join(slower)}")
    elif table:
        note_lines.append("totofs is not slower than in-toto-run on any row measured by both (target: never)")
    for (col, reason), labels in notes.items():
        who = {"native": "native", "totofs": "totofs", "peer": "in-toto-run"}.get(col)
        where = "every row" if len(labels) == len(table) and len(table) > 1 else "; ".join(labels)
        if who is None:
            note_lines.append(f"{where}: {reason}")
        else:
            note_lines.append(f"{who} n/a ({where}): {reason}")
    if note_lines:
        print()
        for n in note_lines:
            print(f"- {n}")
    print()

    # Markdown.
    md = ["# totofs benchmark: native vs `totofs run` vs `in-toto-run`", ""]
    for key, text in meta:
        md.append(f"- {key}: {text}")
    md.append("")
    md.append("| " + " | ".join(HEAD) + " |")
    md.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(HEAD))) + "|")
    for r in table:
        md.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
    if note_lines:
        md.append("")
        md.extend(f"- {n}" for n in note_lines)
    # Every run, in the order run, so a reader can judge the spread behind each median.
    spread = []
    for rid, label, check, *_ in rows:
        if check == "bytes":
            continue
        cols = []
        for col, name in (("native", "native"), ("totofs", "totofs"), ("peer", "in-toto-run")):
            v = values.get((rid, col, "seconds"))
            if v:
                cols.append(f"{name} " + ", ".join(fmt_time(x) for x in v))
        if cols:
            spread.append(f"- {label}: " + "; ".join(cols))
    if spread:
        md.extend(["", "Every run:", ""] + spread)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
