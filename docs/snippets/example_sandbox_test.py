# tests/test_shipping.py in your project; tests/conftest.py has
#     pytest_plugins = ["django_mmc.sandbox.pytest_plugin"]
import pytest

import django_mmc
from django_mmc.directory import sync_directory
from django_mmc.tasks import deliver_notification


@pytest.mark.django_db
def test_shipping_notice_reaches_the_platform(mmc_settings):
    sandbox = mmc_settings  # settings.MMC points at this sandbox during the test
    sync_directory()  # the sandbox's channel groups and templates

    notification = django_mmc.send_notification(
        "+353861234567", "order_shipped", {"first_name": "Ann"}
    )
    # What a worker does once the transaction commits, here and now.
    assert deliver_notification.apply(args=[notification.pk]).get() == "done"

    notification.refresh_from_db()
    assert notification.status == "ACCEPTED" and notification.platform_id
    [received] = sandbox.notifications()
    assert received["template"] == "101"
    assert received["recipient"] == "+353861234567"
    assert received["context"] == {"first_name": "Ann"}


@pytest.mark.django_db
def test_unreachable_number_is_reported(mmc_settings):
    sandbox = mmc_settings
    sync_directory()
    notification = django_mmc.send_notification("+15005550001", "otp", {"code": "123456"})
    deliver_notification.apply(args=[notification.pk]).get()
    sandbox.wait_for_webhooks()  # the scripted number fails at its first step

    [received] = sandbox.notifications()
    assert received["status"] == "FAILED"
    assert received["failure"]["code"] == "RECIPIENT_UNREACHABLE"
