"""Reader choices for spreadsheets and SAS transport, measured on the same files in rotated order.

    .venv/bin/python benchmarks/readers.py [--repeat 3]

- Workbooks: openpyxl (read_only, streaming) against python-calamine, both walking every cell of
  every sheet of CMS's Multiple Chronic Conditions workbook (2.3 MB, two 6.6 MB sheets).
- SAS transport: liberacion's former XPORT parser (whole file in memory; read from git at commit
  ``47fdd49``, before pyreadstat replaced it) against pyreadstat read in chunks of 20,000 rows, on
  NHANES DEMO_I and BMX_I.

Each run is a fresh subprocess so that peak memory (ru_maxrss) belongs to one reader alone.
Needs ../shared/realdata; prints a table of median seconds and peak RSS, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REALDATA = ROOT.parent / "shared" / "realdata"
WORKBOOK = REALDATA / "cms/ds4biomed/State_Table_MCC_Utiliz_Spend_by_Sex_and_Age_2017.xlsx"
XPTS = [REALDATA / "nhanes/2018-sp-stats131/DEMO_I.XPT", REALDATA / "nhanes/2018-sp-stats131/BMX_I.XPT"]

READERS = {
    "openpyxl": """
import openpyxl
wb = openpyxl.load_workbook(PATH, read_only=True, data_only=True)
cells = sum(len(row) for ws in wb.worksheets for row in ws.iter_rows(values_only=True))
wb.close()
""",
    "calamine": """
import python_calamine
wb = python_calamine.CalamineWorkbook.from_path(PATH)
cells = sum(len(row) for name in wb.sheet_names for row in wb.get_sheet_by_name(name).iter_rows())
""",
    "own-xpt": """
import subprocess, types
source = subprocess.run(["git", "-C", ROOT, "show", "47fdd49:liberacion/convert/statistical.py"],
                        capture_output=True, text=True, check=True).stdout
former = sys.modules["former_xpt"] = types.ModuleType("former_xpt")
exec(compile(source, "former_xpt", "exec"), former.__dict__)
start = time.perf_counter()  # the parser's time, not git's
cells = sum(len(c) for c in former.read_xpt(Path(PATH)).columns)
""",
    "pyreadstat-xpt": """
import pyreadstat
cells, offset = 0, 0
while True:  # read_file_in_chunks never ends on dict output when the file does not declare its rows
    chunk, _meta = pyreadstat.read_xport(PATH, row_offset=offset, row_limit=20000, output_format="dict")
    got = len(next(iter(chunk.values()), []))
    cells += got * len(chunk)
    offset += got
    if got < 20000:
        break
""",
}

HARNESS = """
import json, resource, sys, time
from pathlib import Path
ROOT = {root!r}
sys.path.insert(0, ROOT)
PATH = {path!r}
start = time.perf_counter()
{body}
seconds = time.perf_counter() - start
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": seconds, "rss_mb": rss_mb, "cells": cells}}))
"""


def run(reader: str, path: Path) -> dict[str, float]:
    code = HARNESS.format(root=str(ROOT), path=str(path), body=READERS[reader])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def compare(pairs: list[tuple[str, Path]], repeat: int) -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = {f"{r} {p.name}": [] for r, p in pairs}
    for i in range(repeat):
        for reader, path in pairs[i % len(pairs) :] + pairs[: i % len(pairs)]:  # rotated order
            results[f"{reader} {path.name}"].append(run(reader, path))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not REALDATA.is_dir():
        sys.exit(f"{REALDATA} is not present")
    pairs = [("openpyxl", WORKBOOK), ("calamine", WORKBOOK)]
    pairs += [(reader, xpt) for xpt in XPTS for reader in ("own-xpt", "pyreadstat-xpt")]
    results = compare(pairs, args.repeat)
    print(f"{'reader file':45} {'median s':>9} {'peak RSS MB':>12} {'cells':>10}")
    medians = {}
    for key, runs in results.items():
        medians[key] = statistics.median(r["seconds"] for r in runs)
        rss = max(r["rss_mb"] for r in runs)
        print(f"{key:45} {medians[key]:9.3f} {rss:12.0f} {int(runs[0]['cells']):10d}")
    name = WORKBOOK.name
    print(f"calamine / openpyxl time: {medians[f'calamine {name}'] / medians[f'openpyxl {name}']:.2f}")
    for xpt in XPTS:
        ratio = medians[f"pyreadstat-xpt {xpt.name}"] / medians[f"own-xpt {xpt.name}"]
        print(f"pyreadstat / own parser time ({xpt.name}): {ratio:.2f}")


if __name__ == "__main__":
    main()
