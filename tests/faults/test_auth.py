"""Authentication faults: a signature refused for clock skew, and an IAM token revoked."""

from __future__ import annotations

import pytest

from exporter.auth import MIN_REFETCH_INTERVAL
from exporter.dli.api import EXECUTE_GRAPH, IAM_TOKEN, LIST_JOBS
from tests.faults.conftest import FAULTY, FaultSettings, Harness, Scrape

SKEW = 3600.0


async def test_a_signature_refused_for_clock_skew_takes_the_target_down(
    harness: Harness,
) -> None:
    harness.faulty_clock.offset = SKEW  # the gateway's clock is an hour ahead of ours

    scrape = await harness.wait_down(LIST_JOBS, "401")

    assert set(scrape.codes(FAULTY, LIST_JOBS)) <= {"200", "401"}
    errors = harness.logged_errors()
    assert errors and all("APIG.0301" in e and "clock skew" in e for e in errors)
    assert harness.retried_with("401") == []  # AK/SK cannot be renewed: no retry
    await harness.recover()


@pytest.mark.parametrize("settings", [FaultSettings(password_auth=True)], ids=["password"])
async def test_a_revoked_iam_token_is_renewed_once_and_polling_carries_on(
    harness: Harness,
) -> None:
    first = await harness.scrape()
    assert first.codes(FAULTY, IAM_TOKEN) == {"201": 1.0}
    lists_before = first.requests(FAULTY, LIST_JOBS, "200")
    # The token is over a minute old (younger ones are not renewed after a 401), then revoked.
    harness.credentials_clock.offset = MIN_REFETCH_INTERVAL + 1
    harness.faulty.revoke_tokens()

    def renewed_and_polling(s: Scrape) -> bool:
        rejected = s.requests(FAULTY, LIST_JOBS, "401") + s.requests(FAULTY, EXECUTE_GRAPH, "401")
        return (
            rejected >= 1
            and s.requests(FAULTY, IAM_TOKEN, "201") == 2
            and s.requests(FAULTY, LIST_JOBS, "200") >= lists_before + 2
        )

    scrape = await harness.wait_for(renewed_and_polling, "a renewed token used")

    assert scrape.up(FAULTY) == 1.0
    assert scrape.codes(FAULTY, IAM_TOKEN) == {"201": 2.0}
    assert not harness.log_fields("target is down")  # dli_up never went to 0
    harness.assert_healthy_untouched(scrape)
    scrape = await harness.recover()
    assert scrape.codes(FAULTY, IAM_TOKEN) == {"201": 2.0}
