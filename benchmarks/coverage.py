"""How much of each real HHS listing liberacion can fetch.

For every listing under ../shared/realdata/catalogs: its kind, the datasets it lists, how many of
them ``fetch`` can download (the rule of ``liberacion.catalogs.model.choose_files``, which also
fills the index's ``fetchable`` and ``why_not`` columns), and the others counted by why not.

Usage: python benchmarks/coverage.py
Prints a Markdown table (the figures in NOTES.md, "Coverage (issue 11)").
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from liberacion.catalogs.adapters import parse_listing  # noqa: E402
from liberacion.catalogs.model import WHY_NOT, choose_files  # noqa: E402
from liberacion.errors import SourceError  # noqa: E402

CATALOGS = ROOT.parent / "shared" / "realdata" / "catalogs"


def listing_kind(body: bytes) -> str:
    """The adapter a listing needs: a bare array is DKAN, ``results`` openFDA, Socrata ids Socrata."""
    doc = json.loads(body.decode("utf-8-sig"))
    if isinstance(doc, list):
        return "dkan"
    if isinstance(doc, dict) and ("downloadQuery" in doc or isinstance(doc.get("results"), dict)):
        return "openfda"
    return "socrata" if b"/api/views/" in body else "dcat-us"


def coverage(path: Path) -> dict[str, object]:
    body = path.read_bytes()
    kind = listing_kind(body)
    try:
        datasets = parse_listing(kind, body, "bench", url=str(path))
    except SourceError as err:
        return {"kind": kind, "datasets": 0, "fetchable": 0, "why_not": Counter(), "error": str(err)}
    choices = [choose_files(d) for d in datasets]
    why_not = Counter(c.why_not for c in choices if not c.fetchable)
    return {"kind": kind, "datasets": len(datasets), "fetchable": sum(c.fetchable for c in choices), "why_not": why_not}


def main() -> int:
    if not CATALOGS.is_dir():
        print(f"no listings at {CATALOGS}", file=sys.stderr)
        return 1
    reasons = [r for r in WHY_NOT]
    header = ["listing", "kind", "datasets", "fetchable", *reasons]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|")
    totals: Counter[str] = Counter()
    for path in sorted(CATALOGS.rglob("*.json")):
        row = coverage(path)
        counts: Counter[str] = row["why_not"]  # type: ignore[assignment]
        cells = [str(path.relative_to(CATALOGS)), str(row["kind"]), f"{row['datasets']:,}", f"{row['fetchable']:,}"]
        cells += [f"{counts.get(r, 0):,}" for r in reasons]
        print("| " + " | ".join(cells) + " |")
        totals["datasets"] += int(row["datasets"])  # type: ignore[call-overload]
        totals["fetchable"] += int(row["fetchable"])  # type: ignore[call-overload]
        totals.update(counts)
    cells = ["**all**", "", f"{totals['datasets']:,}", f"{totals['fetchable']:,}"]
    cells += [f"{totals.get(r, 0):,}" for r in reasons]
    print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
