"""The checks of subscription arguments, shared by every implementation."""

from __future__ import annotations

import pytest

from identity_store.domain.errors import InvalidInput
from identity_store.domain.subscriptions import (
    MAX_BATCH_SIZE,
    OnFailure,
    check_batch_size,
    check_on_failure,
    check_partition,
    check_subscription_name,
    split_type_patterns,
)

pytestmark = pytest.mark.unit


def test_type_patterns_split_into_sorted_exact_types_and_prefixes_without_repeats() -> None:
    assert split_type_patterns(
        ["user.registered", "user.password.*", "audit.*", "user.registered", "a.b_c"]
    ) == (["a.b_c", "user.registered"], ["audit.", "user.password."])
    assert split_type_patterns(None) == ([], [])
    assert split_type_patterns(iter(())) == ([], [])


@pytest.mark.parametrize(
    "pattern", ["user", "user.", "*", ".*", "user*", "user.*.*", "User.*", "user..*", "9a.*", ""]
)
def test_a_malformed_type_pattern_is_refused_naming_types(pattern: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        split_type_patterns([pattern])
    assert caught.value.field == "types"


def test_names_are_one_to_sixty_three_characters_starting_with_a_letter() -> None:
    assert check_subscription_name("a") == "a"
    assert check_subscription_name("mail.reset-v2_" + "x" * 49) == "mail.reset-v2_" + "x" * 49
    for bad in ("", "a" * 64, "2fa", "-a", "a b", "a\n", "ä", None, b"abc"):
        with pytest.raises(InvalidInput) as caught:
            check_subscription_name(bad)
        assert caught.value.field == "name"


def test_batch_sizes_and_failure_policies() -> None:
    assert check_batch_size(1) == 1 and check_batch_size(MAX_BATCH_SIZE) == MAX_BATCH_SIZE
    for bad in (0, MAX_BATCH_SIZE + 1, 10**9, True, 1.0, "5"):
        with pytest.raises(InvalidInput):
            check_batch_size(bad)
    assert check_on_failure("stop") is OnFailure.STOP
    assert check_on_failure(OnFailure.PARK) is OnFailure.PARK
    for wrong in ("Park", "", None, 1):
        with pytest.raises(InvalidInput) as caught:
            check_on_failure(wrong)
        assert caught.value.field == "on_failure"


def test_partitions_are_an_index_below_a_count_of_at_most_256() -> None:
    assert check_partition(None) == (0, 1)
    assert check_partition((0, 1)) == (0, 1)
    assert check_partition((255, 256)) == (255, 256)
    for bad in ((1, 1), (0, 0), (0, 257), (-1, 2), (0, 2, 1), [0, 2], (0.0, 2), (0, True), "0/2"):
        with pytest.raises(InvalidInput) as caught:
            check_partition(bad)
        assert caught.value.field == "partition"
