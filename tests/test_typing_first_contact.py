"""First contact with real HHS files: each column typed and named as its published values say.

Each test here failed before its fix, but the last, which guards what the JSON date fix keeps.
Real files are read from ../shared/realdata (the ``realdata`` fixture skips when it is absent);
every other file is built in the test.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import liberacion

NNDSS = "cdc/CSV-Datasets_4/NNDSS_-_TABLE_1O._Hansen_s_disease_to_Hantavirus_pulmonary_syndrome.csv"
HOSPITAL_TIMESERIES = "socrata/delphi-epidata-covid_hosp/state_timeseries/dataset.csv"


def schema(table: str) -> dict[str, str]:
    """{column: type} of a lake table, in order."""
    return dict(liberacion.sql(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall())


def test_long_names_alike_in_their_first_60_characters_keep_their_whole_names(home: Path, tmp_path: Path) -> None:
    # NNDSS's value and flag columns, "<disease>, Cum 2020" and "<disease>, Cum 2020, flag", agree
    # in their first 60 characters: numbered stubs (`..._cum_2_2`, `..._cum_2_3`) hid which was the
    # flag and which year was which.
    disease = "Hantavirus infection, non-hantavirus pulmonary syndrome§"
    header = [f'"{disease}, {part}"' for part in ("Cum 2020†", "Cum 2020†, flag", "Cum 2019†", "Cum 2019†, flag")]
    source = tmp_path / "nndss.csv"
    source.write_text(",".join(header) + "\n3,,,N\n,-,5,\n", encoding="utf-8")
    liberacion.fetch([source], as_table="t.nndss")
    stem = "hantavirus_infection_non_hantavirus_pulmonary_syndrome"
    assert schema("t.nndss") == {
        f"{stem}_cum_2": "BIGINT",  # the first keeps its 60 characters, as every long name does
        f"{stem}_cum_2020_flag": "VARCHAR",
        f"{stem}_cum_2019": "BIGINT",
        f"{stem}_cum_2019_flag": "VARCHAR",
    }
    assert liberacion.sql(f"SELECT {stem}_cum_2019 FROM t.nndss WHERE {stem}_cum_2019 IS NOT NULL").fetchall() == [(5,)]


def test_real_nndss_and_hospital_capacity_names_say_which_column_is_which(home: Path, realdata: Path) -> None:
    liberacion.fetch([realdata / NNDSS], as_table="t.nndss")
    names = list(schema("t.nndss"))
    assert "hantavirus_infection_non_hantavirus_pulmonary_syndrome_cum_2019" in names
    assert "hantavirus_infection_non_hantavirus_pulmonary_syndrome_current_week_flag" in names
    assert not [n for n in names if n.endswith(("_2_2", "_2_3", "_2_4", "curre_2", "previ_2"))]
    # healthdata.gov g62h-syeh publishes snake_case names already; the coverage column of a count
    # must not come out as the count's name cut short with `_2`.
    liberacion.fetch([realdata / HOSPITAL_TIMESERIES], as_table="t.capacity")
    names = list(schema("t.capacity"))
    assert "total_adult_patients_hospitalized_confirmed_and_suspected_covid_coverage" in names
    assert not [n for n in names if n.endswith("_2")]


def write_json(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def test_json_dates_with_dashes_are_never_read_day_first(home: Path, tmp_path: Path) -> None:
    # DuckDB's JSON reader guessed %d-%m-%Y for US dates written with dashes (January 5th became
    # May 1st) and %y-%m-%d for 24-01-05: dates typed wrong, silently. They keep their text now.
    source = write_json(
        tmp_path / "d.json",
        [
            {"event": "01-05-2024", "stamp": "01-05-2024 13:45:00", "short": "24-01-05", "iso": "2024-01-05"},
            {"event": "02-06-2024", "stamp": "02-06-2024 08:00:00", "short": "24-02-06", "iso": "2024-02-06"},
        ],
    )
    liberacion.fetch([source], as_table="t.dates")
    assert schema("t.dates") == {"event": "VARCHAR", "stamp": "VARCHAR", "short": "VARCHAR", "iso": "DATE"}
    assert liberacion.sql("SELECT event, short, iso FROM t.dates ORDER BY iso").fetchall() == [
        ("01-05-2024", "24-01-05", date(2024, 1, 5)),
        ("02-06-2024", "24-02-06", date(2024, 2, 6)),
    ]


def test_json_with_iso_dates_and_us_dashed_dates_loads(home: Path, tmp_path: Path) -> None:
    # The reader picks one date format for the whole file: a key of ISO dates beside a key of US
    # dashed dates (a month past 12 read as a day...) failed the load with a DuckDB error.
    records = [{"reported": f"2024-01-{d:02d}", "onset": f"{m:02d}-{d:02d}-2023"} for m in (1, 12) for d in (1, 28)]
    source = write_json(tmp_path / "mixed.json", records)
    [result] = liberacion.fetch([source], as_table="t.mixed")
    assert result.rows == 4
    assert schema("t.mixed") == {"reported": "DATE", "onset": "VARCHAR"}
    assert liberacion.sql("SELECT max(onset) FROM t.mixed").fetchall() == [("12-28-2023",)]


def test_json_us_slash_dates_and_iso_timestamps_are_typed_as_in_csv(home: Path, tmp_path: Path) -> None:
    # Keys the reader typed itself now go through the rules: the same types as before for these.
    source = write_json(
        tmp_path / "t.json",
        [
            {"d": "01/05/2024", "ts": "2024-01-05 13:45:00", "iso_t": "2021-08-21T00:00:00.000", "n": "N/A"},
            {"d": "12/31/2024", "ts": "2024-01-06 00:00:00", "iso_t": "2021-08-28T00:00:00.000", "n": 4},
        ],
    )
    liberacion.fetch([source], as_table="t.stamps")
    assert schema("t.stamps") == {"d": "DATE", "ts": "TIMESTAMP", "iso_t": "TIMESTAMP", "n": "BIGINT"}
    assert liberacion.sql("SELECT d FROM t.stamps ORDER BY d").fetchall() == [
        (date(2024, 1, 5),),
        (date(2024, 12, 31),),
    ]
