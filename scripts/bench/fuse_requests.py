#!/usr/bin/env python3
"""Count the FUSE requests a recorder served, by opcode, from an strace log of it: what the
overlay costs per file, independent of the machine's speed (scripts/bench.sh gives the time).

usage: strace -f -y -x -s 8 -e trace=read -o LOG totofs run ... -- STEP
       fuse_requests.py LOG [FILES]

Each read(2) of /dev/fuse that returned a request starts with the request's header (length,
then opcode, little-endian); strace prints its first 8 bytes. With FILES, the counts are also
given per file.
"""

import collections
import re
import sys

# fs/fuse protocol opcodes (include/uapi/linux/fuse.h).
OPS = {1: "LOOKUP", 2: "FORGET", 3: "GETATTR", 4: "SETATTR", 5: "READLINK", 6: "SYMLINK",
       8: "MKNOD", 9: "MKDIR", 10: "UNLINK", 11: "RMDIR", 12: "RENAME", 13: "LINK", 14: "OPEN",
       15: "READ", 16: "WRITE", 17: "STATFS", 18: "RELEASE", 20: "FSYNC", 21: "SETXATTR",
       22: "GETXATTR", 23: "LISTXATTR", 24: "REMOVEXATTR", 25: "FLUSH", 26: "INIT",
       27: "OPENDIR", 28: "READDIR", 29: "RELEASEDIR", 30: "FSYNCDIR", 34: "ACCESS",
       35: "CREATE", 36: "INTERRUPT", 37: "BMAP", 38: "DESTROY", 39: "IOCTL", 40: "POLL",
       42: "BATCH_FORGET", 43: "FALLOCATE", 44: "READDIRPLUS", 45: "RENAME2", 46: "LSEEK",
       47: "COPY_FILE_RANGE", 48: "SETUPMAPPING", 49: "REMOVEMAPPING", 50: "SYNCFS",
       51: "TMPFILE", 52: "STATX"}
# Requests the caller does not wait for.
ASYNC = {"FORGET", "BATCH_FORGET", "RELEASE", "RELEASEDIR", "INTERRUPT"}

ESC = {"n": 10, "t": 9, "r": 13, "v": 11, "f": 12, '"': 34, "\\": 92}


def unescape(s):
    out, i = bytearray(), 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n == "x":
                out.append(int(s[i + 2:i + 4], 16))
                i += 4
                continue
            if n.isdigit():
                j = i + 1
                while j < len(s) and j < i + 4 and s[j].isdigit():
                    j += 1
                out.append(int(s[i + 1:j], 8))
                i = j
                continue
            out.append(ESC.get(n, ord(n)))
            i += 2
            continue
        out.append(ord(c))
        i += 1
    return bytes(out)


DATA = re.compile(r'"((?:[^"\\]|\\.)*)"(?:\.\.\.)?, \d+\) = (\d+)')


def main(path, files=None):
    pending = set()   # pids inside an unfinished read of /dev/fuse
    counts = collections.Counter()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            pid, _, rest = line.partition(" ")
            rest = rest.lstrip()
            if rest.startswith("read(") and "</dev/fuse>" in rest.split(",", 1)[0]:
                if rest.endswith("<unfinished ...>\n"):
                    pending.add(pid)
                    continue
            elif rest.startswith("<... read resumed>") and pid in pending:
                pending.discard(pid)
            else:
                continue
            m = DATA.search(rest)
            if not m or int(m.group(2)) < 8:
                continue
            head = unescape(m.group(1))
            if len(head) >= 8:
                op = int.from_bytes(head[4:8], "little")
                counts[OPS.get(op, f"opcode {op}")] += 1
    sync = sum(n for op, n in counts.items() if op not in ASYNC)
    per = (lambda n: f"  {n / files:.2f}/file") if files else (lambda n: "")
    for op, n in counts.most_common():
        print(f"{op:14} {n:8}{per(n)}{'  (async)' if op in ASYNC else ''}")
    print(f"{'synchronous':14} {sync:8}{per(sync)}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else None)
