"""The run-id rule and cron schedules: pure functions, tested exhaustively and by property."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpone_core.logical_run import LogicalDate, logical_run_id, parse_execution_date
from dpone_core.schedule import Period, check_schedule, schedule_period


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("2026-11-30", "2026_11_30"),
        ("2026-11-30T00:00:00Z", "2026_11_30"),  # midnight UTC names the date's run
        ("2026-11-30T00:00:00+00:00", "2026_11_30"),  # Airflow's {{ ts }} of a daily DAG
        ("2026-11-30T02:00", "2026_11_30T02_00"),  # a Dagster minute partition key
        ("2026-11-30T02:15:00Z", "2026_11_30T02_15"),  # cron's date -u +%FT%H:%MZ
        ("2026-11-30T02:15:30Z", "2026_11_30T02_15_30"),
        ("2026-11-30T03:15:00+01:00", "2026_11_30T02_15"),  # converted to UTC
        ("2026-12-01T00:30:00+01:00", "2026_11_30T23_30"),  # the previous UTC day
    ],
)
def test_execution_dates_name_runs_in_utc(text: str, token: str) -> None:
    assert parse_execution_date(text).token() == token


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "2026-11-31", "30/11/2026"])
def test_bad_execution_dates_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="expected a date like 2026-11-30"):
        parse_execution_date(text)


def test_run_ids_carry_the_manifest_identity() -> None:
    day = LogicalDate(date(2026, 11, 30))
    assert logical_run_id("orders", day, "/srv/a/manifests/shop.yml") == "shop.orders_2026_11_30"
    assert logical_run_id("orders", day, "other/shop.yaml") == "shop.orders_2026_11_30"
    assert logical_run_id("orders", day, None) == "orders_2026_11_30"
    assert logical_run_id("orders", day, "eu.yml") != logical_run_id("orders", day, "us.yml")


_moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(_moments)
def test_every_idiom_of_one_moment_names_one_run(moment: datetime) -> None:
    """cron's date -u, Airflow's {{ ds }}/{{ ts }}, a Dagster key: one token per moment."""
    daily = LogicalDate.of(moment, Period.DAY)
    assert parse_execution_date(moment.strftime("%Y-%m-%d")).token() == daily.token()
    assert parse_execution_date(daily.iso()).token() == daily.token()
    minute = LogicalDate.of(moment, Period.MINUTE)
    for text in (
        moment.strftime("%Y-%m-%dT%H:%MZ"),  # cron, Kubernetes
        moment.replace(second=0, microsecond=0).isoformat(),  # Airflow {{ ts }}
        moment.strftime("%Y-%m-%dT%H:%M"),  # a Dagster minute partition key
        minute.iso(),
    ):
        assert parse_execution_date(text).token() == minute.token()


@given(_moments, st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_offsets_never_change_the_run(moment: datetime, offset_minutes: int) -> None:
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    assert parse_execution_date(local.isoformat()).token() == (
        parse_execution_date(moment.isoformat()).token()
    )


@given(_moments, _moments)
def test_distinct_minutes_are_distinct_runs(a: datetime, b: datetime) -> None:
    same = a.replace(second=0, microsecond=0) == b.replace(second=0, microsecond=0)
    tokens_equal = (
        LogicalDate.of(a, Period.MINUTE).token() == LogicalDate.of(b, Period.MINUTE).token()
    )
    assert tokens_equal == same


@pytest.mark.parametrize(
    ("schedule", "period"),
    [
        ("0 2 * * *", Period.DAY),
        ("30 23 * * MON-FRI", Period.DAY),
        ("0 2 1 * *", Period.DAY),
        ("@daily", Period.DAY),
        ("@weekly", Period.DAY),
        ("@hourly", Period.MINUTE),
        ("0 * * * *", Period.MINUTE),
        ("*/15 * * * *", Period.MINUTE),
        ("0 2,14 * * *", Period.MINUTE),
        ("0 1-3 * * *", Period.MINUTE),
    ],
)
def test_daily_or_coarser_schedules_name_runs_by_date(schedule: str, period: Period) -> None:
    assert schedule_period(schedule) is period


@pytest.mark.parametrize(
    "schedule",
    ["0 2 * *", "0 2 * * * *", "@sometimes", "@reboot", "0 2 ? * *", "0 2 L * *", "0 2 15W * *",
     "0 2 * * 1#2", "0 2 * * ABC", "1, * * * *", "*/ * * * *", "- * * * *", ""],
)  # fmt: skip
def test_schedules_other_schedulers_would_refuse_are_refused(schedule: str) -> None:
    with pytest.raises(ValueError, match="expected a cron expression"):
        check_schedule(schedule)
