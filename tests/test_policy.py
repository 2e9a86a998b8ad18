"""The one retry and outcome policy (:mod:`django_mmc.policy`)."""

from __future__ import annotations

from django_mmc.exceptions import MMCRateLimitedError
from django_mmc.policy import retry_delay


def test_backoff_without_retry_after_uses_celery_full_jitter(settings):
    settings.MMC = {**settings.MMC, "RETRY_BACKOFF": 2, "RETRY_BACKOFF_MAX": 60}
    delays = {retry_delay(5) for _ in range(50)}
    assert all(0 < d <= 32 for d in delays)
    assert len(delays) > 5  # jittered, not one fixed delay



def test_retry_after_is_capped(settings):
    settings.MMC = {**settings.MMC, "RETRY_AFTER_MAX": 30}
    assert retry_delay(1, MMCRateLimitedError(retry_after=7)) == 7
    assert retry_delay(1, MMCRateLimitedError(retry_after=3600)) == 30
