"""Create the example shop database (customers, orders, products) for the main job.

Deterministic: the same seed gives the same rows, so the demo's numbers are
stable. ``--touch`` simulates a day of business (updates and new orders) so a
second run shows merge and incremental doing their job.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path


def seed(path: Path, customers: int, orders: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    rng = random.Random(7)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            create table customers (customer_id integer primary key, name text not null,
                                    country text not null, updated_at text not null);
            create table products (product_id integer primary key, name text not null,
                                   price_cents integer not null);
            create table orders (order_id integer primary key, customer_id integer not null,
                                 product_id integer not null, quantity integer not null,
                                 status text not null, updated_at text not null);
            """
        )
        countries = ["DE", "FR", "NL", "PL", "SE", "US"]
        db.executemany(
            "insert into customers values (?, ?, ?, ?)",
            [(i, f"customer {i}", rng.choice(countries), base.isoformat()) for i in range(1, customers + 1)],
        )
        db.executemany(
            "insert into products values (?, ?, ?)",
            [(i, f"product {i}", rng.randint(199, 9999)) for i in range(1, 51)],
        )
        db.executemany(
            "insert into orders values (?, ?, ?, ?, ?, ?)",
            [
                (i, rng.randint(1, customers), rng.randint(1, 50), rng.randint(1, 5), "placed",
                 (base + timedelta(minutes=i)).isoformat())
                for i in range(1, orders + 1)
            ],
        )


def touch(path: Path) -> None:
    now = datetime.now(UTC).isoformat()
    with sqlite3.connect(path) as db:
        (top,) = db.execute("select max(order_id) from orders").fetchone()
        db.execute("update orders set status = 'shipped', updated_at = ? where order_id % 10 = 0", (now,))
        db.executemany(
            "insert into orders values (?, 1, 1, 1, 'placed', ?)",
            [(top + i, now) for i in range(1, 101)],
        )
        db.execute("update customers set country = 'DE', updated_at = ? where customer_id <= 5", (now,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="data/shop.db")
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--touch", action="store_true", help="update and add rows instead")
    args = parser.parse_args()
    if args.touch:
        touch(Path(args.db))
    else:
        seed(Path(args.db), args.customers, args.orders)


if __name__ == "__main__":
    main()
