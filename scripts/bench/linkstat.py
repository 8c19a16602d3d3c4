#!/usr/bin/env python3
"""Print "MATERIALS PRODUCTS", the artifact counts of an in-toto link (Metablock or DSSE), so
scripts/bench.sh can show that a fast recorder recorded as much as in-toto-run did.

usage: linkstat.py LINK
"""

import base64
import json
import sys


def main(path):
    with open(path, "rb") as f:
        doc = json.load(f)
    if "payload" in doc:
        doc = json.loads(base64.b64decode(doc["payload"]))
    else:
        doc = doc["signed"]
    print(len(doc.get("materials", {})), len(doc.get("products", {})))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        main(sys.argv[1])
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.exit(f"{sys.argv[1]}: {e}")
