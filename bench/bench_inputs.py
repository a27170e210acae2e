"""What a caller pays to build the library's inputs from plain values.

Run: ``python bench/bench_inputs.py`` (no database needed). Prints the median of
several ``timeit`` rounds (this process's CPU time), in µs per construction, of
``NewEvent`` and ``NewUser`` with typical values, beside a plain tuple of the same
values and ``uuid4()`` alone (what any contender pays for a new event key). Nothing is asserted.
"""

from __future__ import annotations

import os
import statistics
import time
import timeit
import uuid
from collections.abc import Callable

from identity_store import NewEvent, NewUser

ROUNDS = 7
NUMBER = 20_000
USER_ID = uuid.uuid4()
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObGc29tZXM"


def new_event() -> object:
    return NewEvent(
        event_key=uuid.uuid4(), user_id=USER_ID, type="user.bulk_tested", payload={"i": 1}
    )


def new_event_rich() -> object:
    return NewEvent(
        type="user.signed_in",
        user_id=USER_ID,
        payload={"ip": "203.0.113.7", "agent": "Mozilla/5.0 (X11; Linux)", "mfa": True, "n": 3},
    )


def new_user() -> object:
    return NewUser(email="alice.smith@example.com", display_name="Alice Smith", password_hash=HASH)


def new_user_unicode() -> object:
    return NewUser(email="jose.garcia@example.com", display_name="José García Ñúñez")


def a_tuple() -> object:
    return (uuid.uuid4(), USER_ID, "user.bulk_tested", {"i": 1})


CASES: dict[str, Callable[[], object]] = {
    "NewEvent(event_key=uuid4(), user_id, type, payload={'i': 1})": new_event,
    "NewEvent(type, user_id, 4-key payload), default key": new_event_rich,
    "NewUser(email, display_name, password_hash)": new_user,
    "NewUser(email, non-ASCII display_name)": new_user_unicode,
    "tuple of the same values as the first NewEvent": a_tuple,
    "uuid.uuid4() alone": uuid.uuid4,
}


def per_call_us(make: Callable[[], object]) -> float:
    # This process's CPU time: other processes on a shared machine do not count.
    rounds = timeit.repeat(make, number=NUMBER, repeat=ROUNDS, timer=time.process_time)
    return statistics.median(rounds) / NUMBER * 1e6


def main() -> None:
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    for name, make in CASES.items():
        print(f"{per_call_us(make):7.2f} µs  {name}")


if __name__ == "__main__":
    main()
