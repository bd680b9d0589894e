"""Draw the README's pictures of the terminal: the fetch progress display, a fitted `sql` table
and `tables`, as SVG files in docs/.

Usage: python scripts/pictures.py [--width 100] [--out docs]

The commands run for real, in a pseudo-terminal of the given width, over a lake made in a
temporary home from CMS's Hospital General Information (../shared/realdata when present, else a
small table of the same 38 columns); their output, colours included, is recorded by Rich and
saved as SVG. The progress display is drawn from the same code with made-up transfers.
"""

from __future__ import annotations

import argparse
import fcntl
import io
import os
import struct
import subprocess
import sys
import tempfile
import termios
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REAL_FILE = ROOT.parent / "shared" / "realdata" / "cms" / "hospital-cms-dashboard" / "Hospital_General_Information.csv"
sys.path.insert(0, str(ROOT))


def make_lake(home: Path) -> None:
    import pyarrow as pa

    import liberacion
    from liberacion.lake import Lake
    from liberacion.snapshots import Provenance

    if REAL_FILE.is_file():
        [result] = liberacion.fetch([str(REAL_FILE)], as_table="cms.hospital_general_information", home=home)
        assert result.status == "fetched", result.error
    else:  # the same shape, three rows
        names = ["facility_id", "facility_name", "city_town", "state", *[f"measure_{i:02d}" for i in range(33)], "note"]
        columns = {name: [f"{name} {i}" for i in range(3)] for name in names}
        columns["facility_id"] = ["010001", "010005", "010006"]
        Lake(home).publish(
            "cms.hospital_general_information",
            pa.table(columns),
            Provenance(source_url="https://data.cms.gov/provider-data/files/Hospital_General_Information.csv"),
        )
    Lake(home).publish(
        "cdc.leading_causes_of_death",
        pa.table(
            {"year": [2017] * 3, "cause_name": ["All causes", "Cancer", "Stroke"], "deaths": [2813503, 599108, 146383]}
        ),
        Provenance(source_url="https://data.cdc.gov/api/views/bi63-dtpu/rows.csv?accessType=DOWNLOAD"),
    )


def in_terminal(args: list[str], home: Path, width: int) -> str:
    """The output of ``liberacion ARGS`` in a pty ``width`` columns wide, escape codes included."""
    main, child = os.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 50, width, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR")}
    env.update(LIBERACION_HOME=str(home), TERM="xterm-256color", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "liberacion", *args], stdout=child, stderr=child, env=env)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    proc.wait()
    os.close(main)
    return b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


def save(text_or_renderables: list, path: Path, title: str, width: int) -> None:
    from rich.console import Console

    console = Console(record=True, width=width, file=io.StringIO(), force_terminal=True, color_system="truecolor")
    for item in text_or_renderables:
        console.print(item)
    console.save_svg(str(path), title=title)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def command_picture(args: list[str], home: Path, path: Path, width: int) -> None:
    from rich.text import Text

    output = in_terminal(args, home, width)
    shown = " ".join(f'"{a}"' if " " in a else a for a in args)
    save([Text(f"$ liberacion {shown}", style="bold"), Text.from_ansi(output.rstrip("\n"))], path, "liberacion", width)


def progress_picture(path: Path, width: int) -> None:
    from rich.console import Console
    from rich.text import Text

    from liberacion.console import progress_bars

    console = Console(width=width, file=io.StringIO(), force_terminal=True)
    bars = progress_bars(console)
    now = [0.0]
    bars.get_time = lambda: now[0]  # type: ignore[method-assign]
    files = [
        ("Hospital_General_Information.csv", 200_200_000, 0.62),
        ("rows.csv (cdc/bi63-dtpu)", 48_900_000, 0.91),
        ("DEMO_J.XPT", 3_900_000, 0.35),
    ]
    tasks = [bars.add_task(name, total=total) for name, total, _ in files]
    overall = bars.add_task("all downloads", total=sum(total for _, total, _ in files))
    for step in range(1, 11):  # ten seconds of transfers, for the speed and the time left
        now[0] = float(step)
        for task, (_, total, share) in zip(tasks, files):
            bars.update(task, completed=int(total * share * step / 10))
        bars.update(overall, completed=sum(int(t * s * step / 10) for _, t, s in files))
    lines = [Text("converting nhanes.demo_j"), bars.get_renderable()]
    save(lines, path, "liberacion fetch", width)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    options = parser.parse_args()
    options.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        make_lake(home)
        width = options.width
        progress_picture(options.out / "progress.svg", width)
        query = "select * from cms.hospital_general_information limit 5"
        command_picture(["sql", query], home, options.out / "sql.svg", width)
        command_picture(["tables"], home, options.out / "tables.svg", width)


if __name__ == "__main__":
    main()
