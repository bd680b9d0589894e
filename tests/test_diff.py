"""Comparing snapshots: `schema_changes` (for refresh) and `liberacion diff` (rows, with keys)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from liberacion.compare import Renamed, Retyped, diff, schema_changes
from liberacion.lake import Lake
from liberacion.naming import quote_literal
from liberacion.snapshots import Column, Provenance

# -- schema_changes ----------------------------------------------------------------------------


def _cols(*spec: str) -> list[Column]:
    """``"name TYPE"`` strings to columns."""
    return [Column(name=s.split()[0], type=s.split()[1]) for s in spec]


def test_no_change_and_order_alone_is_no_change() -> None:
    change = schema_changes(_cols("a BIGINT", "b VARCHAR"), _cols("b VARCHAR", "a BIGINT"))
    assert not change and change.summary() == "none"


def test_added_removed_retyped() -> None:
    change = schema_changes(
        _cols("id VARCHAR", "deaths BIGINT", "county VARCHAR"),
        _cols("id VARCHAR", "deaths VARCHAR", "rate DOUBLE"),
    )
    assert [c.name for c in change.added] == ["rate"]
    assert [c.name for c in change.removed] == ["county"]
    assert change.retyped == [Retyped("deaths", "BIGINT", "VARCHAR")]
    assert change.renamed == []
    assert change.drops_columns
    assert change.summary() == "added: rate DOUBLE; removed: county; retyped: deaths BIGINT→VARCHAR"
    assert change.to_dict()["retyped"] == [{"name": "deaths", "old_type": "BIGINT", "new_type": "VARCHAR"}]


def test_renamed_looking_columns() -> None:
    old = _cols("facility_id VARCHAR", "hospital_nm VARCHAR", "beds BIGINT", "zip VARCHAR", "visits BIGINT")
    new = _cols("facility_id VARCHAR", "hospital_name VARCHAR", "bed_count BIGINT", "zip_code BIGINT", "ratio BIGINT")
    change = schema_changes(old, new)
    assert change.renamed == [
        Renamed("hospital_nm", "hospital_name", "VARCHAR", "similar name, same position"),
        Renamed("beds", "bed_count", "BIGINT", "similar name, same position"),
    ]
    # zip→zip_code: the type changed too; visits→ratio: same place and type, unrelated names
    assert sorted(c.name for c in change.removed) == ["visits", "zip"]
    assert sorted(c.name for c in change.added) == ["ratio", "zip_code"]
    assert "renamed?: hospital_nm→hospital_name, beds→bed_count" in change.summary()


def test_same_original_header_is_a_rename() -> None:
    old = [Column("x113_cause_name", "VARCHAR", original="113 Cause Name")]
    new = [Column("t_113_cause_name", "VARCHAR", original="113 Cause Name")]
    assert schema_changes(old, new).renamed == [
        Renamed("x113_cause_name", "t_113_cause_name", "VARCHAR", "same original name")
    ]


def test_same_values_make_a_rename_and_types_must_match() -> None:
    old = _cols("a BIGINT", "qq VARCHAR", "zz BIGINT")
    new = _cols("a BIGINT", "rr VARCHAR", "yy VARCHAR")
    asked: list[tuple[str, str]] = []

    def same_values(gone: Column, came: Column) -> bool:
        asked.append((gone.name, came.name))
        return (gone.name, came.name) == ("qq", "rr")

    change = schema_changes(old, new, same_values=same_values)
    assert change.renamed == [Renamed("qq", "rr", "VARCHAR", "same values")]
    assert [c.name for c in change.removed] == ["zz"] and [c.name for c in change.added] == ["yy"]
    assert ("zz", "yy") not in asked  # different types are never compared


def test_each_column_is_renamed_at_most_once() -> None:
    change = schema_changes(_cols("state_nm VARCHAR"), _cols("state_name VARCHAR", "state_nme VARCHAR"))
    assert len(change.renamed) == 1 and len(change.added) == 1 and not change.removed


# -- diff of snapshots -------------------------------------------------------------------------


@pytest.fixture
def keyed(home: Path) -> Lake:
    """Two snapshots of a keyed table with known row changes and schema changes."""
    lake = Lake(home)
    old = pa.table(
        {
            "state": ["MA", "MA", "NY", "NY", "TX", "TX"],
            "year": [2020, 2021, 2020, 2021, 2020, 2021],
            "deaths": pa.array([10, 11, None, 13, 14, 15], pa.int64()),
            "rate": [1.0, 1.1, 1.2, 1.3, 1.4, 1.5],
            "county_nm": ["a", "b", "c", "d", "e", "f"],
            "legacy": ["x"] * 6,
        }
    )
    new = pa.table(
        {
            "state": ["MA", "NY", "NY", "TX", "TX", "CA", "CA", "WA"],
            "year": [2021, 2020, 2021, 2020, 2021, 2020, 2021, 2021],
            #            same  NULL→12   same     14→40  15→NULL
            "deaths": pa.array([11, 12, 13, 40, None, 1, 2, 3], pa.int64()),
            "rate": ["1.1", "1.2", "1.3", "1.4", "1.5", "9", "9", "9"],  # retyped, same values as text
            "county_name": ["b", "c", "d", "e", "f", "g", "h", "i"],  # renamed
            "population": [1, 2, 3, 4, 5, 6, 7, 8],  # added
        }
    )
    lake.publish("cdc.deaths", old)
    lake.publish("cdc.deaths", new)
    return lake


def test_keyed_diff_counts_rows(keyed: Lake) -> None:
    old, new = keyed.snapshots("cdc.deaths")
    result = diff(old, new, keys=["state", "year"], show=10)
    # removed: MA 2020; added: CA 2020, CA 2021, WA 2021; changed: NY 2020, TX 2020, TX 2021
    assert (result.added, result.removed, result.changed) == (3, 1, 3)
    assert result.changed_columns == {"deaths": 3, "rate": 0}
    assert [r["state"] + str(r["year"]) for r in result.added_examples] == ["CA2020", "CA2021", "WA2021"]
    assert [(r["state"], r["year"], r["legacy"]) for r in result.removed_examples] == [("MA", 2020, "x")]
    changed = {(c.key["state"], c.key["year"]): c.changes for c in result.changed_examples}
    assert changed == {
        ("NY", 2020): {"deaths": (None, "12")},
        ("TX", 2020): {"deaths": ("14", "40")},
        ("TX", 2021): {"deaths": ("15", None)},
    }
    assert [c.name for c in result.schema.added] == ["population"]
    assert [c.name for c in result.schema.removed] == ["legacy"]
    assert result.schema.retyped == [Retyped("rate", "DOUBLE", "VARCHAR")]
    assert result.schema.renamed == [Renamed("county_nm", "county_name", "VARCHAR", "similar name, same position")]


def test_diff_through_the_cli(cli, keyed: Lake) -> None:
    old, new = keyed.snapshots("cdc.deaths")
    result = cli("diff", "cdc.deaths", "--key", "state", "-k", "year", "--show", "1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)
    by_change: dict[str, list[dict]] = {}
    for record in records:
        by_change.setdefault(record["change"], []).append(record)
    assert by_change["snapshots"][0]["old"] == old.id and by_change["snapshots"][0]["new"] == new.id
    assert by_change["rows"][0] == {"change": "rows", "column": None, "key": None, "old": "6", "new": "8", "count": 2}
    assert by_change["rows_added"][0]["count"] == 3
    assert by_change["rows_removed"][0]["count"] == 1
    assert by_change["rows_changed"][0]["count"] == 3
    assert [(r["column"], r["count"]) for r in by_change["column_changed"]] == [("deaths", 3)]
    assert [r["column"] for r in by_change["column_added"]] == ["population"]
    assert [(r["column"], r["old"]) for r in by_change["column_removed"]] == [("legacy", "VARCHAR")]
    assert [(r["column"], r["old"], r["new"]) for r in by_change["column_retyped"]] == [("rate", "DOUBLE", "VARCHAR")]
    assert [(r["old"], r["new"]) for r in by_change["column_renamed"]] == [("county_nm", "county_name")]
    # --show 1: one example of each kind
    assert [json.loads(r["key"]) for r in by_change["row_added"]] == [{"state": "CA", "year": 2020}]
    assert json.loads(by_change["row_added"][0]["new"])["population"] == 6
    assert [json.loads(r["key"]) for r in by_change["row_removed"]] == [{"state": "MA", "year": 2020}]
    assert [(r["column"], r["old"], r["new"]) for r in by_change["row_changed"]] == [("deaths", None, "12")]


def test_diff_csv_and_table(cli, keyed: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = list(csv.DictReader(cli("diff", "cdc.deaths", "-k", "state,year", "--show", "0").stdout.splitlines()))
    assert {r["change"]: r["count"] for r in rows if r["change"].startswith("rows_")} == {
        "rows_added": "3",
        "rows_removed": "1",
        "rows_changed": "3",
    }
    assert not [r for r in rows if r["change"].startswith("row_")]  # --show 0: no examples
    monkeypatch.setenv("COLUMNS", "200")
    table = cli("diff", "cdc.deaths", "-k", "state,year", "-f", "table").stdout
    assert "rows_changed" in table and "cdc.deaths:" in table
    monkeypatch.setenv("COLUMNS", "80")  # a key reads as people write it, and is cut last
    narrow = cli("diff", "cdc.deaths", "-k", "state,year", "-f", "table").stdout
    assert "state=NY, year=2020" in narrow and '{"state"' not in narrow
    assert all(len(line) <= 80 for line in narrow.splitlines())
    as_json = json.loads(cli("diff", "cdc.deaths", "-k", "state,year", "-f", "json").stdout)
    assert {"state": "NY", "year": 2020} in [json.loads(r["key"]) for r in as_json if r["key"]]  # pipes: JSON


def test_diff_keys_from_provenance(cli, home: Path) -> None:
    lake = Lake(home)
    keys = Provenance(extra={"keys": ["id"]})
    lake.publish("cms.t", pa.table({"id": [1, 2], "v": ["a", "b"]}), keys)
    lake.publish("cms.t", pa.table({"id": [2, 3], "v": ["B", "c"]}), keys)
    records = json.loads(cli("diff", "cms.t", "-f", "json").stdout)
    counts = {r["change"]: r["count"] for r in records if r["change"].startswith("rows_")}
    assert counts == {"rows_added": 1, "rows_removed": 1, "rows_changed": 1}
    assert [r["old"] for r in records if r["change"] == "keys"] == ["id"]


def test_unkeyed_diff_counts_rows_without_an_identical_twin(cli, home: Path) -> None:
    lake = Lake(home)
    lake.publish("cms.t", pa.table({"id": [1, 2, 2, 3], "v": ["a", "b", "b", "c"]}))
    lake.publish("cms.t", pa.table({"id": [1, 2, 3, 4], "v": ["a", "b", "C", "d"]}))
    records = json.loads(cli("diff", "cms.t", "-f", "json").stdout)
    counts = {r["change"]: r["count"] for r in records if r["change"].startswith("rows_")}
    assert counts == {"rows_added": 2, "rows_removed": 2}  # (3,C),(4,d) vs (2,b),(3,c); no "changed"
    assert sorted(r["new"] for r in records if r["change"] == "row_added") == [
        '{"id": 3, "v": "C"}',
        '{"id": 4, "v": "d"}',
    ]


def test_identical_values_under_a_new_name_look_renamed(home: Path) -> None:
    lake = Lake(home)
    lake.publish("cms.t", pa.table({"id": [1, 2], "qq": ["x", "y"]}))
    lake.publish("cms.t", pa.table({"id": [1, 2], "zzz_other": ["y", "x"]}))
    old, new = lake.snapshots("cms.t")
    assert diff(old, new).schema.renamed == [Renamed("qq", "zzz_other", "VARCHAR", "same values")]


def test_diff_snapshot_selection(cli, home: Path) -> None:
    lake = Lake(home)
    a = lake.publish("cms.t", pa.table({"id": [1]}))
    lake.publish("cms.t", pa.table({"id": [1, 2]}))
    c = lake.publish("cms.t", pa.table({"id": [1, 2, 3]}))
    records = json.loads(cli("diff", "cms.t", "--from", a.id, "--to", "current", "-k", "id", "-f", "json").stdout)
    assert records[0] == {"change": "snapshots", "column": None, "key": None, "old": a.id, "new": c.id, "count": None}
    assert {r["change"]: r["count"] for r in records}["rows_added"] == 2
    back = json.loads(cli("diff", "cms.t", "--from", "current", "--to", a.id, "-k", "id", "-f", "json").stdout)
    assert {r["change"]: r["count"] for r in back}["rows_removed"] == 2


def test_a_key_that_repeats_says_what_to_do(cli, home: Path) -> None:
    """A key that repeats (the dataset's declared one, most often) says how to go on: other keys
    with --key, or whole rows with --key '' (the message said only that it repeats)."""
    lake = Lake(home)
    lake.publish("cms.t", pa.table({"id": [1, 2], "v": [1, 2]}))
    lake.publish("cms.t", pa.table({"id": [1, 1], "v": [1, 2]}))
    result = cli("diff", "cms.t", "--key", "id")
    assert result.exit_code == 2 and "not unique" in result.stderr
    assert "--key ''" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_diff_errors(cli, home: Path) -> None:
    lake = Lake(home)
    lake.publish("cms.t", pa.table({"id": [1, 1], "v": [1, 2]}))
    result = cli("diff", "cms.t")
    assert result.exit_code == 3 and "no snapshot kept before" in result.stderr
    lake.publish("cms.t", pa.table({"id": [1, 2], "v": [1, 2]}))
    result = cli("diff", "cms.t", "--key", "nope")
    assert result.exit_code == 2 and "key column 'nope'" in result.stderr and "id, v" in result.stderr
    result = cli("diff", "cms.t", "--key", "id")
    assert result.exit_code == 2 and "not unique" in result.stderr
    assert cli("diff", "cms.t", "--from", "20200101T000000000000Z").exit_code == 3
    assert cli("diff", "cms.t", "--show", "-1").exit_code == 2
    assert cli("diff", "cms.nothing").exit_code == 3
    short = cli("diff", "cms.t", "--from", "2026")
    assert short.exit_code == 2 and "at least the day" in short.stderr and "invalid time" not in short.stderr
    itself = cli("diff", "cms.t", "--from", "current")
    assert itself.exit_code == 2 and "both name snapshot" in itself.stderr and itself.stdout == ""


# -- real data: two releases of NCHS leading causes of death -----------------------------------

_NCHS = "NCHS_-_Leading_Causes_of_Death__United_States.csv"


def _load_nchs(path: Path) -> pa.Table:
    """What the converter will do, for now: snake_case names, thousands separators out."""
    with duckdb.connect() as con:
        return con.sql(
            f"""
            SELECT CAST("Year" AS BIGINT) AS year, "113 Cause Name" AS "113_cause_name",
                   "Cause Name" AS cause_name, "State" AS state,
                   CAST(replace("Deaths", ',', '') AS BIGINT) AS deaths,
                   CAST(replace("Age-adjusted Death Rate", ',', '') AS DOUBLE) AS age_adjusted_death_rate
            FROM read_csv({quote_literal(str(path))}, all_varchar = true, header = true)
            """
        ).to_arrow_table()


def _python_rows(path: Path) -> dict[tuple[str, str, str], tuple[str, int, float]]:
    """The same file read independently: key -> the other values."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return {
            (r["Year"], r["Cause Name"], r["State"]): (
                r["113 Cause Name"],
                int(r["Deaths"].replace(",", "")),
                float(r["Age-adjusted Death Rate"].replace(",", "")),
            )
            for r in csv.DictReader(fh)
        }


def test_real_nchs_releases_keyed_diff(cli, home: Path, realdata: Path) -> None:
    older_path = realdata / "cdc" / "csv_to_sqlite3" / _NCHS
    newer_path = realdata / "cdc" / "ds4biomed" / _NCHS
    lake = Lake(home)
    lake.publish("cdc.leading_causes_of_death", _load_nchs(older_path), Provenance(sha256="older"))
    lake.publish("cdc.leading_causes_of_death", _load_nchs(newer_path), Provenance(sha256="newer"))

    older, newer = _python_rows(older_path), _python_rows(newer_path)
    assert (len(older), len(newer)) == (10_296, 10_868)
    expected_added = len(newer.keys() - older.keys())
    expected_removed = len(older.keys() - newer.keys())
    expected_changed = sum(1 for k in older.keys() & newer.keys() if older[k] != newer[k])
    expected_deaths = sum(1 for k in older.keys() & newer.keys() if older[k][1] != newer[k][1])

    result = cli("diff", "cdc.leading_causes_of_death", "--key", "year,cause_name,state", "-f", "json", "--show", "3")
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)
    counts = {
        r["change"]: r["count"]
        for r in records
        if r["change"] in ("rows", "rows_added", "rows_removed", "rows_changed")
    }
    assert counts == {
        "rows": 10_868 - 10_296,
        "rows_added": expected_added,
        "rows_removed": expected_removed,
        "rows_changed": expected_changed,
    }
    assert expected_added > 0  # 2017 is new in the newer release
    per_column = {r["column"]: r["count"] for r in records if r["change"] == "column_changed"}
    assert per_column.get("deaths", 0) == expected_deaths
    assert not [r for r in records if r["change"].startswith("column_") and r["change"] != "column_changed"]
    # every example shown is a real difference
    for record in records:
        if record["change"] == "row_changed":
            key = json.loads(record["key"])
            k = (str(key["year"]), key["cause_name"], key["state"])
            assert k in older and k in newer and older[k] != newer[k]
        if record["change"] == "row_added":
            key = json.loads(record["key"])
            assert (str(key["year"]), key["cause_name"], key["state"]) not in older

    history = json.loads(cli("history", "cdc.leading_causes_of_death", "-f", "json").stdout)
    assert [(h["rows"], h["rows_change"], h["sha256"]) for h in history] == [
        (10_296, None, "older"),
        (10_868, 572, "newer"),
    ]
    as_of_first = cli(
        "sql", "--as-of", history[0]["published_at"], "select count(*) as n from cdc.leading_causes_of_death"
    )
    assert as_of_first.stdout == "n\n10296\n"


def test_a_change_of_spaces_alone_shows_at_a_terminal(cli, tmp_path: Path) -> None:
    # `b ` to `b` showed as `b │ b` in the terminal table: no visible change.
    data = tmp_path / "t.csv"
    data.write_text('id,name\n1,"b "\n2,c\n', encoding="utf-8")
    assert cli("fetch", str(data), "--as", "x.t").exit_code == 0
    data.write_text("id,name\n1,b\n2,c\n", encoding="utf-8")
    assert cli("fetch", str(data), "--as", "x.t").exit_code == 0
    shown = cli("diff", "x.t", "--key", "id", "--format", "table")
    assert shown.exit_code == 0 and '"b "' in shown.stdout
    exact = json.loads(cli("diff", "x.t", "--key", "id", "--format", "json").stdout)
    assert [(r["old"], r["new"]) for r in exact if r["change"] == "row_changed"] == [("b ", "b")]
