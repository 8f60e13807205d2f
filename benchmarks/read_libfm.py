"""Time afm.load_libfm on the Frappe validation file (57,722 lines): median of 5 reads.

python benchmarks/read_libfm.py [PATH]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import afm

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "frappe" / "frappe.validation.libfm"


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not path.is_file():
        sys.exit(f"{path}: not found (pass the path of a libFM file)")
    times = []
    for _ in range(5):
        start = time.perf_counter()
        ds = afm.load_libfm(path)
        times.append(time.perf_counter() - start)
    print(
        f"{path.name}: {len(ds):,} rows, {ds.n_fields} fields; median {statistics.median(times):.3f} s "
        f"(min {min(times):.3f}, max {max(times):.3f}) over 5 reads"
    )


if __name__ == "__main__":
    main()
