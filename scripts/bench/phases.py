#!/usr/bin/env python3
"""Sum the phases of one `totofs run` (its TOTOFS_STATS=1 line on stdin) into three numbers:
seconds before the step (listing and stat-ing the materials, mounting), the step itself, and
after it (unmount, hashing, sealing, link, trace). Prints "BEFORE STEP AFTER", or nothing."""

import re
import sys

BEFORE = ("material walk", "material stat", "mount")

text = sys.stdin.read()
found = re.findall(r"(?:phases: |, )([a-z ]+?) ([0-9.]+) s \(peak", text)
if found:
    t = {"before": 0.0, "step": 0.0, "after": 0.0}
    for name, secs in found:
        key = "before" if name in BEFORE else "step" if name == "step" else "after"
        t[key] += float(secs)
    print(f"{t['before']:.4f} {t['step']:.4f} {t['after']:.4f}")
