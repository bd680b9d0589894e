"""Time and memory of `liberacion discover` and `liberacion search`.

1. discover of the real 4 MB healthdata.gov data.json (../shared/realdata), served from 127.0.0.1:
   wall time and peak RSS of the whole command, first run (200) and second run (304).
2. search over a deterministic 10,000-dataset index (a generated Socrata-style data.json):
   wall time of the whole command, median of --runs.
3. discover of every shipped catalog, its listings served from 127.0.0.1 (the real listings of
   ../shared/realdata/catalogs for the Socrata, DCAT-US and DKAN sources; a small generated
   download.json and CKAN package_search for openFDA and data.gov), with ETags: the first run
   (200) against unchanged runs (every listing 304, or an unchanged CKAN search), medians of
   --runs, as the whole command (alternating round by round with `liberacion --help` and a bare
   `python -c pass`, for the ratio to start-up) and as the ``discover()`` call in a warm process.

Modules are byte-compiled as an installed package's are (PYTHONDONTWRITEBYTECODE is dropped for
the commands measured): otherwise every run would compile liberacion's sources again.

Usage: python benchmarks/discover.py [--runs N] [--only shipped]
Goals: discover under 2 s and 300 MB, search under 0.3 s (issue 3); an unchanged discover of the
shipped catalogs at most 0.2 s (issue 13).
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

from compiled import compiled_env

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server import LocalServer  # noqa: E402

REALDATA = ROOT.parent / "shared" / "realdata" / "catalogs"
REAL = REALDATA / "data-cdc-gov-json-quality" / "2021-12-12" / "hhs.gov.data.json"
# The listing each shipped source kind is served from (a real one where realdata has it).
SHIPPED_LISTINGS = {
    "https://data.cdc.gov/data.json": REALDATA / "data-cdc-gov-json-quality" / "2020-04-24" / "cdc.gov.data.json",
    "https://healthdata.gov/data.json": REAL,
    "https://data.cms.gov/data.json": REALDATA / "gov-datajson-diff" / "cms.json",
    "https://data.cms.gov/provider-data/api/1/metastore/schemas/dataset/items": REALDATA
    / "providertwo"
    / "provider.json",
}
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


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


def run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one liberacion command in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "liberacion", *args], env=env, check=True, capture_output=True, cwd=ROOT)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024  # ru_maxrss is KB on Linux; the max over children so far


def openfda_download_json() -> bytes:
    """A download.json of a few endpoints, as api.fda.gov publishes it."""
    endpoints = {}
    for category, names in (
        ("drug", ("enforcement", "label", "ndc")),
        ("food", ("enforcement",)),
        ("device", ("recall",)),
    ):
        endpoints[category] = {
            name: {
                "export_date": "2026-11-30",
                "total_records": 1000,
                "partitions": [
                    {
                        "display_name": f"{name} part {i}",
                        "file": f"https://download.open.fda.gov/{category}/{name}/{i}.zip",
                        "size_mb": "1.5",
                    }
                    for i in range(1, 4)
                ],
            }
            for name in names
        }
    return json.dumps({"meta": {"last_updated": "2026-11-30"}, "results": endpoints}).encode()


def ckan_search(count: int) -> bytes:
    """One CKAN package_search page of ``count`` packages (fewer than rows: the last page)."""
    packages = [
        {
            "id": f"00000000-0000-0000-0000-{i:012d}",
            "name": f"hhs-dataset-{i}",
            "title": f"HHS dataset {i}",
            "notes": "A dataset harvested into catalog.data.gov.",
            "metadata_modified": "2026-11-01T00:00:00",
            "organization": {"title": "U.S. Department of Health & Human Services"},
            "resources": [{"url": f"https://data.example.gov/{i}.csv", "format": "CSV", "name": "data"}],
        }
        for i in range(count)
    ]
    return json.dumps({"success": True, "result": {"count": count, "results": packages}}).encode()


def shipped_manifests(server: LocalServer, directory: Path) -> list[str]:
    """Each shipped manifest with its listings' URLs pointing at ``server``; returns the catalogs."""
    import tomllib

    shipped = sorted((ROOT / "catalogs").glob("*.toml"))
    for path in shipped:
        text = path.read_text(encoding="utf-8")
        for i, source in enumerate(tomllib.loads(text).get("source", [])):
            url = source["url"]
            body: bytes | Path
            if source["kind"] == "openfda":
                body = openfda_download_json()
            elif source["kind"] == "ckan":
                body = ckan_search(300)
            else:
                body = SHIPPED_LISTINGS[url]
            local = server.add(f"/{path.stem}/{i}/listing.json", body, content_type="application/json")
            text = text.replace(url, local)
        (directory / path.name).write_text(text, encoding="utf-8")
    return [p.stem for p in shipped]


def in_process_discover(env: dict[str, str], runs: int) -> list[float]:
    """Seconds of ``liberacion.discover()`` in one warm process (no interpreter start, imports done)."""
    code = (
        "import json, sys, time\n"
        "from liberacion.api import discover\n"
        "times, rebuilt = [], []\n"
        f"for _ in range({runs}):\n"
        "    start = time.perf_counter(); report = discover(); times.append(time.perf_counter() - start)\n"
        "    rebuilt.append(report.rebuilt)\n"
        "print(json.dumps([times, rebuilt]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True, cwd=ROOT)
    times, rebuilt = json.loads(done.stdout.strip().splitlines()[-1])
    if any(rebuilt):
        print(f"  note: the index was rebuilt in {sum(rebuilt)} of {runs} unchanged runs")
    return times


def shipped(server: LocalServer, tmp: Path, runs: int) -> None:
    missing = [p for p in SHIPPED_LISTINGS.values() if not p.is_file()]
    if missing:
        print(f"real data absent ({missing[0]}): skipping the shipped catalogs")
        return
    manifests = tmp / "shipped-manifests"
    manifests.mkdir()
    names = shipped_manifests(server, manifests)
    env = {**compiled_env(), "LIBERACION_CATALOGS": str(manifests), "PYTHONPATH": str(ROOT)}
    env["LIBERACION_HOME"] = str(tmp / "home-shipped")
    first, rss = run(["discover"], env)
    before = len(server.requests)
    again: list[float] = []
    helps: list[float] = []
    bare: list[float] = []
    for _ in range(runs):  # alternating: a noisy moment hits all three alike
        again.append(run(["discover"], env)[0])
        helps.append(run(["--help"], env)[0])
        bare.append(timed([sys.executable, "-c", "pass"], env))
    requests_per_run = (len(server.requests) - before) // runs
    warm = in_process_discover(env, runs)
    discover_s, help_s, bare_s = statistics.median(again), statistics.median(helps), statistics.median(bare)
    ratios = statistics.median(a / h for a, h in zip(again, helps))
    print(f"discover of the {len(names)} shipped catalogs ({', '.join(names)}):")
    print(f"  first run (every listing 200):              {first:.2f} s, peak RSS {rss:.0f} MB")
    print(
        f"  unchanged, whole command (median of {runs}):   {discover_s:.3f} s "
        f"(min {min(again):.3f}); {requests_per_run} requests per run"
    )
    print(f"  unchanged, discover() in a warm process:    {statistics.median(warm):.3f} s (min {min(warm):.3f})")
    print(f"  for scale, liberacion --help:               {help_s:.3f} s, python -c pass {bare_s:.3f} s")
    print(f"  unchanged discover / --help:                {ratios:.2f}x paired median, +{discover_s - help_s:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--only", choices=["shipped"], help="run only the shipped catalogs' discover")
    args = parser.parse_args()
    server = LocalServer().start()
    if args.only == "shipped":
        with tempfile.TemporaryDirectory() as tmp:
            shipped(server, Path(tmp), args.runs)
        server.stop()
        return
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
        shipped(server, Path(tmp), args.runs)
    server.stop()


if __name__ == "__main__":
    main()
