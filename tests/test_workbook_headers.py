"""Workbooks whose header spans several rows (CMS's state tables): the band rows above the header
name the columns with it, instead of ``measure_2`` ... ``measure_48``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_members_sheets import fetched, make_workbook, query, tables_of

MEASURES = ["Spending ($)", "Spending ($)", "ED Visits", "ED Visits"]


def _columns(cli: Any, table: str) -> list[str]:
    return [r["column_name"] for r in query(cli, f"select column_name from (describe {table})")]


def _merged_header_book(path: Path) -> Path:
    """Title, blank row, an age band merged over four columns each (its label in the first cell
    only, as a merged cell reads), a constant band, a count band, then the repeated measures."""
    rows: list[list[Any]] = [
        ["Utilization by Age, 2017"],
        [],
        ["", "", "All", None, None, None, "Under 65", None, None, None],
        ["", "", *["Number of Chronic Conditions"] * 8],
        ["", "", *["0 to 1", "2+"] * 4],
        ["State", "FIPS", *MEASURES, *MEASURES],
        ["Alabama ", "01 ", 1.5, 2.5, 3, 4, 5.5, 6.5, 7, 8],
        ["Alaska", "02", 1, 2, 3, 4, 5, 6, 7, 8],
    ]
    return make_workbook(path, {"Males": rows})


def test_band_rows_over_a_repeated_header_name_each_column(cli: Any, tmp_path: Path) -> None:
    record = fetched(cli, str(_merged_header_book(tmp_path / "mcc.xlsx")), "--as", "w.mcc")
    (table,) = tables_of(record)
    assert _columns(cli, table) == [
        "state",
        "fips",
        "spending_all_0_to_1",
        "spending_all_2",
        "ed_visits_all_0_to_1",
        "ed_visits_all_2",
        "spending_under_65_0_to_1",
        "spending_under_65_2",
        "ed_visits_under_65_0_to_1",
        "ed_visits_under_65_2",
    ]
    assert query(cli, f"select fips, ed_visits_under_65_2 from {table} order by fips") == [
        {"fips": "01", "ed_visits_under_65_2": 8},
        {"fips": "02", "ed_visits_under_65_2": 8},
    ]


def test_rows_above_a_header_without_repeats_stay_titles(cli: Any, tmp_path: Path) -> None:
    rows: list[list[Any]] = [
        ["Hospital beds, 2024"],
        ["", "Source: CMS", "Provider of Services"],
        ["ccn", "name", "beds"],
        ["010001", "General", 120],
    ]
    book = make_workbook(tmp_path / "beds.xlsx", {"Beds": rows})
    (table,) = tables_of(fetched(cli, str(book), "--as", "w.beds"))
    assert _columns(cli, table) == ["ccn", "name", "beds"]
    assert query(cli, f"select ccn, beds from {table}") == [{"ccn": "010001", "beds": 120}]


def test_the_real_cms_state_table_names_its_48_measures_apart(cli: Any, realdata: Path) -> None:
    book = realdata / "cms/ds4biomed/State_Table_MCC_Utiliz_Spend_by_Sex_and_Age_2017.xlsx"
    if not book.exists():
        pytest.skip("the CMS workbook is not in ../shared/realdata")
    fetched(cli, str(book), "--as", "w.state")
    columns = _columns(cli, "w.state__males")
    assert columns[:3] == ["state", "state_fips_code", "per_capita_spending_actual_all_males_0_to_1"]
    assert "per_capita_spending_actual_males_65_years_and_over_4_to_5" in columns
    assert len(columns) == 50 and "per_capita_spending_actual_2" not in columns, columns
    national = query(cli, "select per_capita_spending_actual_all_males_0_to_1 as v from w.state__males limit 1")
    assert national == [{"v": 1793.8659}]
