"""Named query parameters: ``liberacion sql 'select ... where state = $state' --param state=CA`` and
``liberacion.sql(query, params={"state": "CA"})``. A value is data, never SQL, in every path a
query takes: each format, --output, -x, --as-of, --safe, a script, stdin, the dataset index."""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import liberacion
from liberacion.lake import Lake
from tests.conftest import ROOT, Cli, run_process
from tests.manifests import small_listing, write_catalog
from tests.server import LocalServer

HOSTILE = 'it\'s; drop table x; -- "quoted" $state'  # quotes, a semicolon, a comment, a $name
QUERY = "select name, beds from cms.beds where state = $state and beds > $min order by beds"


@pytest.fixture
def lake(home: Path) -> Lake:
    lake = Lake(home)
    table = pa.table(
        {
            "state": ["CA", "MA", "CA", "CA"],
            "beds": [12, 300, 7, 40],
            "opened": [datetime.date(2020, 1, 2), datetime.date(2021, 5, 6), datetime.date(2019, 3, 4), None],
            "name": ["A", "B", HOSTILE, "D"],
        }
    )
    lake.publish("cms.beds", table)
    return lake


def one_error(result: object, code: int) -> str:
    """The single ``error:`` line of a failed command, which exited ``code``."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)  # type: ignore[attr-defined]
    lines = result.stderr.splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.stderr  # type: ignore[attr-defined]
    return lines[0].removeprefix("error: ")


def rows_of(fmt: str, text: str) -> list[list[str]]:
    """The rows (header first) a command wrote in ``fmt``, as text."""
    if fmt in ("csv", "tsv"):
        return [row for row in csv.reader(io.StringIO(text), delimiter="," if fmt == "csv" else "\t")]
    if fmt in ("json", "jsonl"):
        records = json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
        return [list(records[0])] + [[str(v) for v in r.values()] for r in records] if records else []
    if fmt == "markdown":
        lines = [line for line in text.splitlines() if not line.startswith("|---")]
        return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    raise AssertionError(fmt)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "markdown"])
def test_params_give_their_values_in_every_text_format(cli: Cli, lake: Lake, fmt: str) -> None:
    result = cli("sql", QUERY, "--param", "state=CA", "-p", "min=8", "--format", fmt)
    assert result.exit_code == 0, result.stderr
    # min=8 compared with BIGINT beds is the number 8: as text, "12" and "40" sort before "8".
    assert rows_of(fmt, result.stdout) == [["name", "beds"], ["A", "12"], ["D", "40"]]


def test_params_in_a_terminal_table_and_expanded(cli: Cli, lake: Lake) -> None:
    result = cli("sql", QUERY, "--param", "state=CA", "--param", "min=8", "--format", "table")
    assert result.exit_code == 0, result.stderr
    assert "│ A" in result.stdout and "│ D" in result.stdout and "B" not in result.stdout.replace("beds", "")
    result = cli("sql", QUERY, "--param", "state=MA", "--param", "min=8", "-x")
    assert result.exit_code == 0, result.stderr
    assert "RECORD 1" in result.stdout and "B" in result.stdout and "RECORD 2" not in result.stdout


def test_params_in_a_table_past_the_screen_sorted_or_not_with_dates(cli: Cli, lake: Lake) -> None:
    # A sort is kept whole (its rows counted there); an unsorted result is counted on; a date
    # column goes through the infinite-date wrapper: each is SQL around the query, given its values.
    sorted_rows = cli(
        "sql", "select name, opened from cms.beds where opened >= $d order by opened", "-p", "d=2019-06-01",
        "--format", "table", "--max-rows", "1",
    )  # fmt: skip
    assert sorted_rows.exit_code == 0, sorted_rows.stderr
    assert "2020-01-02" in sorted_rows.stdout and "2021-05-06" not in sorted_rows.stdout
    assert "1 more row" in sorted_rows.stdout + sorted_rows.stderr
    unsorted = cli("sql", "select name from cms.beds where state = $s", "-p", "s=CA", "-f", "table", "--max-rows", "1")
    assert unsorted.exit_code == 0, unsorted.stderr
    assert "2 more rows" in unsorted.stdout + unsorted.stderr


def test_params_where_render_writes_the_rows(cli: Cli, lake: Lake) -> None:
    # A REAL column in Markdown, and JSON of columns sharing a name, go through Arrow, not DuckDB's COPY.
    query = "select name, $x::REAL as r from cms.beds where state = $s"
    real = cli("sql", query, "-p", "s=MA", "-p", "x=0.1", "-f", "markdown")
    assert real.exit_code == 0, real.stderr
    assert "| B | 0.1 |" in real.stdout
    twins = cli("sql", "select name, name as NAME from cms.beds where state = $s", "-p", "s=MA", "-f", "json")
    assert twins.exit_code == 0, twins.stderr
    assert json.loads(twins.stdout) == [{"name": "B", "NAME_1": "B"}]


def test_params_into_a_pipe_and_into_files(lake: Lake, tmp_path: Path) -> None:
    # A pipe: DuckDB's COPY writes the CSV and the JSON straight to stdout, with the values bound.
    for fmt in ("csv", "json"):
        piped = run_process("sql", QUERY, "--param", "state=CA", "--param", "min=8", "--format", fmt)
        assert piped.returncode == 0, piped.stderr
        assert rows_of(fmt, piped.stdout) == [["name", "beds"], ["A", "12"], ["D", "40"]]
    for suffix in ("csv", "jsonl", "md", "parquet"):
        target = tmp_path / f"out.{suffix}"
        written = run_process("sql", QUERY, "-p", "state=CA", "-p", "min=8", "--output", str(target))
        assert written.returncode == 0, written.stderr
        if suffix == "parquet":
            assert pq.read_table(target).to_pylist() == [{"name": "A", "beds": 12}, {"name": "D", "beds": 40}]
        else:
            assert rows_of({"md": "markdown"}.get(suffix, suffix), target.read_text(encoding="utf-8"))[1:] == [
                ["A", "12"],
                ["D", "40"],
            ]


@pytest.mark.parametrize("fmt", ["csv", "json", "table", "parquet"])
def test_a_value_with_quotes_and_semicolons_is_data_never_sql(cli: Cli, lake: Lake, fmt: str, tmp_path: Path) -> None:
    args = ["--output", str(tmp_path / "out.parquet")] if fmt == "parquet" else ["--format", fmt]
    found = cli("sql", "select name from cms.beds where name = $name", "--param", f"name={HOSTILE}", *args)
    assert found.exit_code == 0, found.stderr
    if fmt == "parquet":
        assert pq.read_table(tmp_path / "out.parquet").column("name").to_pylist() == [HOSTILE]
    elif fmt == "csv":
        assert rows_of("csv", found.stdout) == [["name"], [HOSTILE]]
    elif fmt == "json":
        assert json.loads(found.stdout) == [{"name": HOSTILE}]
    else:
        assert "drop table x" in found.stdout
    # What would break out of a quoted string, pasted into the SQL, matches nothing: it is one value.
    injected = cli(
        "sql", "select count(*) as n from cms.beds where state = $state", "-p", "state=CA' or '1'='1", "-f", "csv"
    )
    assert injected.exit_code == 0 and injected.stdout.split() == ["n", "0"], injected.stderr
    still = cli("sql", "select count(*) as n from cms.beds", "-f", "csv")
    assert still.stdout.split() == ["n", "4"]


def test_text_is_read_as_the_number_or_date_it_is_compared_with(cli: Cli, lake: Lake) -> None:
    query = "select name from cms.beds where beds between $lo and $hi order by 1"
    numbers = cli("sql", query, "-p", "lo=10", "-p", "hi=100", "-f", "csv")
    assert numbers.stdout.split() == ["name", "A", "D"], numbers.stderr
    dates = cli(
        "sql", "select name from cms.beds where opened >= $since order by 1", "-p", "since=2020-01-02", "-f", "csv"
    )
    assert dates.stdout.split() == ["name", "A", "B"], dates.stderr
    as_text = cli("sql", "select $n as n, typeof($n) as t", "-p", "n=007", "-f", "csv")  # nothing to compare: text
    assert as_text.stdout.split() == ["n,t", "007,VARCHAR"], as_text.stderr
    cast = cli("sql", "select $n::INTEGER + 1 as m", "-p", "n=41", "-f", "csv")
    assert cast.stdout.split() == ["m", "42"], cast.stderr


def test_a_value_whose_type_cannot_be_told_says_to_cast_it(cli: Cli, lake: Lake, tmp_path: Path) -> None:
    line = one_error(cli("sql", "select $n + 1 as m", "-p", "n=41"), 4)
    assert "--param value is text" in line and "$n::INTEGER" in line and "Candidate" not in line
    line = one_error(cli("sql", "select opened + $days as d from cms.beds", "-p", "days=2", "-f", "json"), 4)
    assert line.startswith("DuckDB cannot choose which +(DATE, STRING_LITERAL) to call") and "$days::INTEGER" in line
    then = cli("sql", "select opened + $days::INTEGER as d from cms.beds where beds = 12", "-p", "days=2", "-f", "csv")
    assert then.stdout.split() == ["d", "2020-01-04"], then.stderr
    # A value that cannot be read as the column's type: the error names the option.
    for fmt in ("csv", "json", "table", "markdown", "parquet"):
        args = ("--output", str(tmp_path / "x.parquet")) if fmt == "parquet" else ("--format", fmt)
        line = one_error(cli("sql", "select * from cms.beds where beds > $n", "-p", "n=ten", *args), 4)
        assert "'ten'" in line and "--param n" in line and "COPY" not in line, (fmt, line)
        assert not (tmp_path / "x.parquet").exists()
    line = one_error(cli("sql", "select * from cms.beds where opened > $d", "-p", "d=yesterday", "-f", "csv"), 4)
    assert "yesterday" in line and "--param d" in line


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--param", "state"], "--param state: give NAME=VALUE, e.g. --param state=CA"),
        (["--param", "=CA"], "--param =CA: no name before =; give NAME=VALUE"),
        (["--param", "1st=CA"], "--param 1st: not a parameter name; a name is a letter or _ then letters, digits or _"),
        (["--param", "state=CA", "--param", "state=MA"], "--param state is given twice; give each parameter once"),
        (["-p", "state=CA", "-p", "STATE=MA"], "--param state and --param STATE are the same parameter"),
        (
            ["-p", "state=CA", "-p", "county=X"],
            "--param county is not used: the SQL names no $county (it names $state)",
        ),
        ([], "the SQL names $state, which no --param gives: add --param state=VALUE"),
        (["-p", "stat=CA"], "add --param state=VALUE (--param stat given, but the SQL names no $stat)"),
    ],
)
def test_a_wrong_param_is_one_error_naming_the_option(cli: Cli, lake: Lake, args: list[str], said: str) -> None:
    line = one_error(cli("sql", "select * from cms.beds where state = $state", *args), 2)
    assert line.startswith(said) or said in line, line


def test_params_a_query_does_not_take_are_said(cli: Cli, lake: Lake) -> None:
    line = one_error(cli("sql", "select count(*) from cms.beds", "-p", "n=1", "-p", "m=2"), 2)
    assert line.startswith("--param n and --param m are not used: the SQL names no $n or $m (it names no parameter)")
    line = one_error(cli("sql", "select * from cms.beds where beds > $min and state = $s"), 2)
    assert line == "the SQL names $min and $s, which no --param gives: add --param min=VALUE --param s=VALUE"
    line = one_error(cli("sql", "select * from cms.beds where state = ?", "-p", "state=CA"), 2)
    assert line.startswith("the SQL holds positional parameters (? or $1); values are given by name")
    # A $ in a string or a comment is no parameter: nothing to give.
    plain = cli("sql", "select '$state' as s -- $n\n", "-f", "csv")
    assert plain.exit_code == 0 and plain.stdout.split() == ["s", "$state"], plain.stderr


def test_every_statement_of_a_script_takes_the_params_it_names(cli: Cli, lake: Lake, tmp_path: Path) -> None:
    script = tmp_path / "report.sql"
    script.write_text(
        "create temp table picked as select * from cms.beds where state = $state;\n"
        "select count(*) as n, sum(beds) as beds from picked where beds > $min;\n",
        encoding="utf-8",
    )
    for fmt in ("csv", "table", "markdown", "json"):
        result = cli("sql", "--file", str(script), "-p", "state=CA", "-p", "min=8", "-f", fmt)
        assert result.exit_code == 0, (fmt, result.stderr)
        assert "52" in result.stdout, (fmt, result.stdout)
    target = tmp_path / "report.parquet"
    written = cli("sql", "--file", str(script), "-p", "state=CA", "-p", "min=8", "-o", str(target))
    assert written.exit_code == 0, written.stderr
    assert pq.read_table(target).to_pylist() == [{"n": 2, "beds": 52}]
    piped = cli("sql", "-", "-p", "state=CA", "-p", "min=8", "-f", "csv", input=script.read_text(encoding="utf-8"))
    assert piped.exit_code == 0 and piped.stdout.split() == ["n,beds", "2,52"], piped.stderr
    # A name used in one statement only is still used; one no statement holds is not.
    line = one_error(cli("sql", "--file", str(script), "-p", "state=CA", "-p", "min=8", "-p", "max=9"), 2)
    assert line.startswith("--param max is not used: the SQL names no $max (it names $state and $min)")


def test_params_under_safe(cli: Cli, lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    for fmt in ("csv", "json", "table"):
        result = cli("sql", "--safe", QUERY, "-p", "state=CA", "-p", "min=8", "-f", fmt)
        assert result.exit_code == 0, result.stderr
        assert "D" in result.stdout and "B" not in result.stdout.replace("beds", "")
    monkeypatch.setenv("LIBERACION_SQL_SAFE", "1")
    result = cli("sql", QUERY, "-p", "state=CA", "-p", "min=8", "-f", "csv")
    assert result.stdout.split() == ["name,beds", "A,12", "D,40"], result.stderr
    # A value naming a file is data: the sandbox has nothing to refuse, the query compares text.
    result = cli("sql", "select count(*) as n from cms.beds where name = $f", "-p", "f=/etc/passwd", "-f", "csv")
    assert result.stdout.split() == ["n", "0"], result.stderr


def test_params_as_of_an_earlier_snapshot(cli: Cli, lake: Lake) -> None:
    [first] = [entry.snapshot for entry in liberacion.history("cms.beds")]
    lake.publish("cms.beds", pa.table({"state": ["CA"] * 5, "beds": [1, 2, 3, 4, 5]}))
    query = "select count(*) as n from cms.beds where state = $state"
    now = cli("sql", query, "-p", "state=CA", "-f", "csv")
    assert now.stdout.split() == ["n", "5"], now.stderr
    then = cli("sql", query, "--as-of", first.published_at, "-p", "state=CA", "-f", "csv")
    assert then.stdout.split() == ["n", "3"], then.stderr
    assert liberacion.sql(query, params={"state": "CA"}, as_of=first.published_at).fetchall() == [(3,)]


def test_params_over_the_dataset_index(cli: Cli, manifests: Path, http_server: LocalServer) -> None:
    url = http_server.add("/list.json", small_listing("Births", "Deaths"), content_type="application/json")
    write_catalog(manifests, "quick", [("dcat-us", url)])
    assert cli("discover", "quick").exit_code == 0
    query = "select title from liberacion.datasets where catalog = $catalog and title like $like order by 1"
    found = cli("sql", query, "-p", "catalog=quick", "-p", "like=D%", "-f", "csv")
    assert found.exit_code == 0 and found.stdout.split() == ["title", "Deaths"], found.stderr
    assert liberacion.sql(query, params={"catalog": "quick", "like": "%"}).fetchall() == [("Births",), ("Deaths",)]


def test_python_values_keep_their_types(lake: Lake) -> None:
    def one(query: str, **params: object) -> object:
        [(value,)] = liberacion.sql(query, params=params).fetchall()
        return value

    assert one("select typeof($v)", v=3) == "INTEGER" and one("select typeof($v)", v=1.5) == "DOUBLE"
    assert one("select typeof($v)", v="3") == "VARCHAR" and one("select typeof($v)", v=True) == "BOOLEAN"
    assert one("select typeof($v)", v=datetime.date(2020, 1, 2)) == "DATE"
    assert one("select typeof($v)", v=datetime.datetime(2020, 1, 2, 3, 4)) == "TIMESTAMP"
    assert one("select $v::VARCHAR", v=Decimal("1.50")) == "1.50"
    assert one("select $v is null", v=None) is True
    assert one("select count(*) from cms.beds where beds > $n", n=8) == 3
    assert one("select count(*) from cms.beds where opened > $d", d=datetime.date(2020, 1, 1)) == 2
    assert one("select count(*) from cms.beds where opened > $d", d=datetime.datetime(2020, 1, 2, 12)) == 1
    assert one("select name from cms.beds where name = $n", n=HOSTILE) == HOSTILE
    table = liberacion.sql(QUERY, params={"state": "CA", "min": 8}, arrow=True)
    assert table.to_pylist() == [{"name": "A", "beds": 12}, {"name": "D", "beds": 40}]
    script = "create temp table t as select * from cms.beds where state = $s; select count(*) from t where beds > $m"
    assert liberacion.sql(script, params={"s": "CA", "m": 8}).fetchall() == [(2,)]
    assert liberacion.sql("select $State", params={"state": "x"}).fetchall() == [("x",)]  # one name in any case
    assert liberacion.sql("select 1", params={}).fetchall() == [(1,)]
    assert liberacion.sql(QUERY, params={"state": "CA", "min": 8}, safe=True).fetchall() == [("A", 12), ("D", 40)]


@pytest.mark.parametrize(
    ("query", "params", "option", "parameter"),
    [
        (
            "select * from cms.beds where state = $state",
            {},
            "add --param state=VALUE",
            "add {'state': VALUE} to params",
        ),
        ("select 1", {"n": "1"}, "--param n is not used", "params['n'] is not used"),
        ("select $n", {"1x": "1"}, "--param 1x: not a parameter name", "params: '1x': not a parameter name"),
    ],
)
def test_python_and_the_command_line_say_the_same_mistake(
    cli: Cli, lake: Lake, query: str, params: dict[str, str], option: str, parameter: str
) -> None:
    with pytest.raises(liberacion.UsageError) as caught:
        liberacion.sql(query, params=params)
    args = [f"--param={name}={value}" for name, value in params.items()]
    line = one_error(cli("sql", query, *args), caught.value.exit_code)
    assert option in line and parameter in str(caught.value)


def test_python_params_that_are_not_usable_are_usage_errors(lake: Lake) -> None:
    with pytest.raises(liberacion.UsageError, match=r"^params must be a dict of parameter names to values"):
        liberacion.sql("select $n", params=[("n", 1)])  # type: ignore[arg-type]
    with pytest.raises(liberacion.UsageError, match=r"^params\['n'\] and params\['N'\] are the same parameter"):
        liberacion.sql("select $n", params={"n": 1, "N": 2})
    with pytest.raises(liberacion.UsageError, match=r"^params\['n'\]: DuckDB cannot take an object as a parameter"):
        liberacion.sql("select $n", params={"n": object()})
    with pytest.raises(liberacion.SQLError, match=r"a str in params is text.*cast it in the SQL, e\.g\. \$n::INTEGER"):
        liberacion.sql("select $n + 1", params={"n": "1"})
    with pytest.raises(liberacion.SQLError, match=r"params\['n'\] is an int: give it as a str, or cast it"):
        liberacion.sql("select * from cms.beds where state = $n", params={"n": 1}, arrow=True)


def test_completion_and_help_offer_the_option(cli: Cli) -> None:
    from tests.test_completion import complete

    assert "--param" in complete("bash", "liberacion sql --pa")
    shown = cli("sql", "--help").stdout
    assert "-p, --param NAME=VALUE" in shown and "--param state=CA" in shown


def test_ctrl_c_stops_a_long_query_with_params(home: Path) -> None:
    # The query runs on a worker thread with its values bound; Ctrl-C still stops it (exit 130).
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home)}
    query = "select count(*), sum(a.range * b.range % $m::INTEGER) from range(3000000) a, range(3000) b"
    command = [sys.executable, "-m", "liberacion", "sql", query, "--param", "m=7", "--format", "csv"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(2)
    assert process.poll() is None, "the query ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, (out, err)
    assert "interrupted" in err and "Traceback" not in err and "internal error" not in err
