"""Time and memory of `liberacion discover` and `liberacion search`.

1. discover of the real 4 MB healthdata.gov data.json (../shared/realdata), served from 127.0.0.1:
   wall time and peak RSS of the whole command, first run (200) and second run (304).
2. search over a deterministic 10,000-dataset index (a generated Socrata-style data.json):
   wall time of the whole command, median of --runs.

Usage: python benchmarks/discover.py [--runs N]
Goals (issue 3): discover under 2 s and 300 MB; search under 0.3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server import LocalServer  # noqa: E402

REAL = (
    ROOT.parent / "shared" / "realdata" / "catalogs" / "data-cdc-gov-json-quality" / "2021-12-12" / "hhs.gov.data.json"
)
WORDS = [
    "hospital",
    "capacity",
    "covid",
    "deaths",
    "mortality",
    "county",
    "state",
    "national",
    "medicare",
    "medicaid",
    "provider",
    "drug",
    "opioid",
    "vaccination",
    "survey",
    "nutrition",
    "obesity",
    "diabetes",
    "cancer",
    "heart",
    "disease",
    "tobacco",
    "smoking",
    "births",
    "infant",
    "maternal",
    "nursing",
    "home",
    "dialysis",
    "readmissions",
    "quality",
    "payments",
    "enrollment",
    "prescribers",
    "emergency",
    "surveillance",
    "influenza",
    "respiratory",
    "behavioral",
    "risk",
    "factor",
    "places",
    "chronic",
    "indicators",
    "weekly",
    "annual",
]
PUBLISHERS = [
    "Centers for Disease Control and Prevention",
    "Centers for Medicare & Medicaid Services",
    "U.S. Food and Drug Administration",
    "National Institutes of Health (NIH)",
    "Substance Abuse & Mental Health Services Administration",
]


def synthetic_listing(count: int, seed: int = 3) -> bytes:
    """A Socrata-style DCAT-US data.json with ``count`` datasets, the same for the same seed."""
    rng = random.Random(seed)
    datasets = []
    for i in range(count):
        four = f"{i:04d}-{rng.randrange(36**4):04x}"[:9]
        base = f"https://data.example.gov/api/views/{four}"
        datasets.append(
            {
                "identifier": base,
                "title": " ".join(rng.choice(WORDS).title() for _ in range(rng.randint(3, 9))),
                "description": " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 80))),
                "keyword": rng.sample(WORDS, 4),
                "modified": f"20{rng.randint(10, 25)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "publisher": {"name": rng.choice(PUBLISHERS)},
                "accessLevel": "public",
                "distribution": [
                    {"downloadURL": f"{base}/rows.{ext}?accessType=DOWNLOAD", "mediaType": media}
                    for ext, media in (("csv", "text/csv"), ("json", "application/json"), ("xml", "application/xml"))
                ],
            }
        )
    return json.dumps({"conformsTo": "https://project-open-data.cio.gov/v1.1/schema", "dataset": datasets}).encode()


def run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one liberacion command in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "liberacion", *args], env=env, check=True, capture_output=True, cwd=ROOT)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024  # ru_maxrss is KB on Linux; the max over children so far


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    server = LocalServer().start()
    with tempfile.TemporaryDirectory() as tmp:
        manifests = Path(tmp) / "manifests"
        manifests.mkdir()
        env = {**os.environ, "LIBERACION_CATALOGS": str(manifests), "PYTHONPATH": str(ROOT)}
        if REAL.is_file():
            url = server.add("/hhs/data.json", REAL, content_type="application/json")
            (manifests / "hhs.toml").write_text(f'name = "hhs"\n[[source]]\nkind = "socrata"\nurl = "{url}"\n')
            env["LIBERACION_HOME"] = str(Path(tmp) / "home-real")
            wall, rss = run(["discover", "hhs"], env)
            size = REAL.stat().st_size / 1e6
            print(f"discover hhs.gov data.json ({size:.1f} MB), first run:  {wall:.2f} s, peak RSS {rss:.0f} MB")
            wall, _ = run(["discover", "hhs"], env)
            print(f"discover hhs.gov data.json, unchanged (304):           {wall:.2f} s")
        else:
            print("real data absent: skipping the healthdata.gov discover")
        url = server.add("/big/data.json", synthetic_listing(10_000), content_type="application/json")
        (manifests / "big.toml").write_text(f'name = "big"\n[[source]]\nkind = "socrata"\nurl = "{url}"\n')
        env["LIBERACION_HOME"] = str(Path(tmp) / "home-big")
        wall, rss = run(["discover", "big"], env)
        print(f"discover 10,000 synthetic datasets:                    {wall:.2f} s, peak RSS {rss:.0f} MB")
        for query in (["hospital", "capacity"], ["opioid", "--publisher", "medicare", "--format-of-data", "csv"]):
            times = [run(["search", *query, "--limit", "20"], env)[0] for _ in range(args.runs)]
            label = " ".join(query)
            print(
                f"search {label!r} over 10,000 datasets: median {statistics.median(times):.3f} s (min {min(times):.3f})"
            )
        times = [run(["--help"], env)[0] for _ in range(args.runs)]
        print(f"liberacion --help: median {statistics.median(times):.3f} s")
    server.stop()


if __name__ == "__main__":
    main()
