"""The console's key flows on PostgreSQL too (the other tests run on SQLite): sessions and
throttling, queue order, one owner under concurrent claims, compensation approval."""

from __future__ import annotations

import pytest

from tests.console import test_console_api, test_console_desk

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("console_database", ["postgres"], indirect=True),
]

test_logout_ends_the_session_for_good = test_console_api.test_logout_ends_the_session_for_good
test_five_failures_throttle_even_the_right_password = (
    test_console_api.test_five_failures_throttle_even_the_right_password
)
test_queue_is_ordered_by_priority = (
    test_console_api.test_queue_is_ordered_by_priority_and_agents_see_waiting_and_their_own
)
test_concurrent_claims = test_console_api.test_two_agents_claiming_at_once_get_one_chat_between_them
test_compensation_approval = (
    test_console_desk.test_compensation_up_to_the_limit_is_granted_above_it_waits_for_a_supervisor
)
