"""Shared command line of the gallery scripts: ``--small`` (reduced size, used by the tests and
CI) and ``--out`` (default: the committed PNG next to the script)."""
from __future__ import annotations

import argparse
import os
import sys

# the scripts run from a checkout: make its packages importable without installing
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def parse(script: str, doc: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--small", action="store_true", help="reduced size (tests, CI)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(script)),
                                                 os.path.basename(script)[:-3] + ".png"))
    return p.parse_args()
