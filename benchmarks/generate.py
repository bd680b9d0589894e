"""Generate a realistic, messy health CSV of a given size, deterministically (seeded).

It has the traps that break general tools: ZIP and FIPS codes whose leading zeros only appear
late in the file, "Not Available" and "*" in numeric columns long after the first rows, US dates
whose day exceeds 12 only late, thousands separators, currency, percents, Yes/No booleans and
quoted fields with commas, doubled quotes and embedded newlines.

``--markers 0.15`` makes a marker-heavy variant: that share of the cells of every numeric column
(anywhere in the file, first rows included) is a missing-value marker such as ``Not Available``,
``*`` or ``Suppressed``, as in files where suppression is common.

Usage: python benchmarks/generate.py OUT.csv --mb 1024 [--seed 7] [--markers 0.15]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

STATES = ["AL", "AK", "AZ", "MA", "NJ", "NY", "CT", "TX", "CA", "PR", "VT", "ME"]
WORDS = ["General", "Memorial", "Regional", "Mercy", "St. Mary's", "Community", "University", "Children's", "Valley"]
HEADER = [
    "Facility ID", "Facility Name", "Address", "City", "State", "ZIP Code", "County FIPS", "NPI", "Phone Number",
    "Hospital Type", "Emergency Services", "Overall Rating", "Score", "Measure Start Date", "Measure End Date",
    "Total Payments", "Percent Readmitted", "Deaths", "Beds", "Updated At", "Sample", "Footnote", "Comments",
]  # fmt: skip
# The numeric columns (by position) and the markers of the marker-heavy variant, most common first.
NUMERIC = (11, 12, 15, 16, 17, 18, 20)
MARKERS = ("Not Available", "*", "Suppressed", "N/A", "--", "Not Applicable", "(NA)")
MARKER_WEIGHTS = (40, 25, 15, 8, 6, 4, 2)


def _row(rng: random.Random, i: int, late: bool) -> list[str]:
    name = f"{rng.choice(WORDS)} {rng.choice(WORDS)} Hospital"
    if rng.random() < 0.02:
        name = f'{name}, Inc. "Main Campus"'
    zip_code = f"{rng.randint(1000, 9999):05d}" if late and rng.random() < 0.3 else str(rng.randint(10000, 99999))
    fips = (
        f"{rng.randint(1, 9):02d}{rng.randint(1, 999):03d}"
        if late
        else f"{rng.randint(10, 56)}{rng.randint(1, 999):03d}"
    )
    month, day = rng.randint(1, 12), rng.randint(13, 28) if late and rng.random() < 0.5 else rng.randint(1, 12)
    rating = "Not Available" if late and rng.random() < 0.2 else str(rng.randint(1, 5))
    score = "*" if late and rng.random() < 0.05 else f"{rng.uniform(0, 100):.2f}"
    comment = "Line one\nline two" if rng.random() < 0.01 else ("" if rng.random() < 0.7 else "See notes, page 2")
    return [
        f"{rng.randint(10000, 670000):06d}" if late else str(rng.randint(100000, 670000)),
        name,
        f"{rng.randint(1, 9999)} Main St",
        rng.choice(["Boston", "Newark", "Austin", "San Juan", "Burlington"]),
        rng.choice(STATES),
        zip_code,
        fips,
        str(rng.randint(1000000000, 1999999999)),
        f"({rng.randint(200, 999)}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
        rng.choice(["Acute Care Hospitals", "Critical Access Hospitals", "Childrens"]),
        rng.choice(["Yes", "No"]),
        rating,
        score,
        f"{month:02d}/{day:02d}/2023",
        f"{month:02d}/{day:02d}/2024",
        f"${rng.randint(0, 9_999_999):,}.{rng.randint(0, 99):02d}",
        f"{rng.randint(0, 100)}%",
        f"{rng.randint(0, 250_000):,}",
        str(rng.randint(4, 1500)),
        f"2024-{month:02d}-{min(day, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00",
        str(rng.randint(0, 10**6)),
        rng.choice(["", "", "", "1", "2", "3"]),
        comment,
    ]


def _quote(value: str) -> str:
    if any(ch in value for ch in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _with_markers(rng: random.Random, row: list[str], share: float) -> list[str]:
    """Replace about ``share`` of the row's numeric cells with markers."""
    for column in NUMERIC:
        if rng.random() < share:
            row[column] = rng.choices(MARKERS, MARKER_WEIGHTS)[0]
    return row


def generate(path: Path, megabytes: float, seed: int = 7, markers: float = 0.0) -> int:
    """Write about ``megabytes`` MB to ``path``; returns the number of data rows. ``markers``: the
    share of numeric cells that are missing-value markers, all through the file."""
    rng = random.Random(seed)
    target = int(megabytes * 1024 * 1024)
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(HEADER) + "\r\n")
        written = 0
        while written < target:
            # The traps appear only after the first 60% of the file (beyond any sniffing sample).
            late = written > target * 0.6
            batch = (_row(rng, rows + k, late) for k in range(1000))
            if markers:
                batch = (_with_markers(rng, row, markers) for row in batch)
            lines = [",".join(_quote(v) for v in row) for row in batch]
            chunk = "\r\n".join(lines) + "\r\n"
            fh.write(chunk)
            written += len(chunk)
            rows += 1000
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--mb", type=float, default=1024)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--markers", type=float, default=0.0, help="share of numeric cells that are markers")
    args = parser.parse_args()
    rows = generate(args.out, args.mb, args.seed, args.markers)
    print(f"{args.out}: {rows:,} rows, {args.out.stat().st_size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
