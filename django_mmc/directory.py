"""The directory: channel groups, channels and templates.

Synced from the platform where it lists them. Where it does not (the
platform provides the ids at setup, and a list endpoint may answer ``404``
or ``403``), staff enter them by hand in the admin, or ``MMC["DIRECTORY"]``
declares them. Each row says where it came from (:class:`Origin`); a sync
only ever updates or deactivates the rows it synced itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from .client import get_client
from .conf import mmc_settings
from .dispatch import database
from .exceptions import MMCNotFoundError, MMCPermanentError
from .models import Channel, ChannelGroup, Template
from .models.directory import Origin

logger = logging.getLogger("django_mmc.directory")

#: The answers that mean "this platform has no such list".
_UNAVAILABLE = (404, 403)


def sync_directory() -> dict[str, Any]:
    """Bring the local directory up to date.

    The rows ``MMC["DIRECTORY"]`` declares are created or updated first
    (origin ``SETTINGS``; a declared row no longer declared is marked
    inactive). Then every channel group (with its channels) and template the
    platform lists: what disappeared upstream is marked inactive, never
    deleted, so notifications that refer to it keep working. A list the
    platform does not offer (``404``/``403``) changes nothing of its kind,
    and rows entered by hand or declared in the settings are never touched
    by what the platform lists or leaves out.

    Returns the counts of active synced rows (``channel_groups``,
    ``channels``, ``templates``), the lists the platform does not offer
    (``unavailable``: kind -> its answer, such as ``"404 NOT_FOUND"``) and
    the active rows entered by hand or declared that were kept (``kept``)."""
    apply_declared_directory()
    client = get_client()
    report: dict[str, Any] = {"unavailable": {}}
    groups = _listing(client.list_channel_groups, "channel_groups", report)
    templates = _listing(client.list_templates, "templates", report)
    now = timezone.now()
    with transaction.atomic(using=database()):
        if groups is not None:
            _sync_groups(groups, now)
        if templates is not None:
            _sync_templates(templates, now)
    platform_groups = ChannelGroup.objects.filter(origin=Origin.PLATFORM, is_active=True)
    report["channel_groups"] = platform_groups.count()
    report["channels"] = Channel.objects.filter(group__in=platform_groups,
                                                is_active=True).count()
    report["templates"] = Template.objects.filter(origin=Origin.PLATFORM,
                                                  is_active=True).count()
    report["kept"] = {
        "channel_groups": ChannelGroup.objects.exclude(origin=Origin.PLATFORM)
        .filter(is_active=True).count(),
        "templates": Template.objects.exclude(origin=Origin.PLATFORM)
        .filter(is_active=True).count(),
    }
    return report


def _listing(call: Callable[[], list[Any]], kind: str,
             report: dict[str, Any]) -> list[Any] | None:
    """What the platform lists, or ``None`` (and a note in ``report``) when
    it has no such list."""
    try:
        return call()
    except (MMCNotFoundError, MMCPermanentError) as err:
        if err.status_code not in _UNAVAILABLE:
            raise
        report["unavailable"][kind] = f"{err.status_code} {err.code or ''}".strip()
        logger.warning("django_mmc: the platform does not list %s (%s); the directory's "
                       "%s were not synced", kind, report["unavailable"][kind], kind)
        return None


def _sync_groups(groups: Iterable[Any], now: Any) -> None:
    local = set(ChannelGroup.objects.exclude(origin=Origin.PLATFORM)
                .values_list("platform_id", flat=True))
    seen_groups, seen_channels = [], []
    for remote in groups:
        if remote.id in local:
            continue  # the site's own row: the site said what it is
        group, _ = ChannelGroup.objects.update_or_create(
            platform_id=remote.id,
            defaults={"name": remote.name, "is_active": True, "synced_at": now},
        )
        seen_groups.append(remote.id)
        for channel in remote.channels:
            Channel.objects.update_or_create(
                platform_id=channel.id,
                defaults={"group": group, "name": channel.name,
                          "channel_type": channel.channel_type, "is_active": True},
            )
            seen_channels.append(channel.id)
    ChannelGroup.objects.filter(origin=Origin.PLATFORM).exclude(
        platform_id__in=seen_groups).update(is_active=False)
    Channel.objects.filter(group__origin=Origin.PLATFORM).exclude(
        platform_id__in=seen_channels).update(is_active=False)


def _sync_templates(templates: Iterable[Any], now: Any) -> None:
    local = set(Template.objects.exclude(origin=Origin.PLATFORM)
                .values_list("platform_id", flat=True))
    seen = []
    for remote in templates:
        if remote.id in local:
            continue
        Template.objects.update_or_create(
            platform_id=remote.id,
            defaults={
                "name": remote.name, "description": remote.description,
                "channel_types": list(remote.channel_types),
                "parameters": [{"name": p.name, "required": p.required}
                               for p in remote.parameters],
                "preview": remote.preview, "is_active": True, "synced_at": now,
            },
        )
        seen.append(remote.id)
    Template.objects.filter(origin=Origin.PLATFORM).exclude(
        platform_id__in=seen).update(is_active=False)


# -- rows entered by hand or declared in the settings --------------------------------


def set_group_channel_types(group: ChannelGroup, channel_types: Iterable[str]) -> None:
    """Give a channel group entered by hand (or declared) exactly these
    channel types. Its channels' ids are not the platform's (they are never
    sent): ``<group id>:<TYPE>``."""
    wanted = {str(t).strip().upper() for t in channel_types if str(t).strip()}
    for kind in wanted:
        Channel.objects.update_or_create(
            platform_id=f"{group.platform_id}:{kind}",
            defaults={"group": group, "channel_type": kind, "name": kind, "is_active": True})
    group.channels.exclude(channel_type__in=wanted).update(is_active=False)


def normalise_parameters(parameters: Iterable[Any]) -> list[dict[str, Any]]:
    """``["first_name", {"name": "code", "required": true}]`` as the rows
    store parameters: a bare name is a required parameter."""
    found = []
    for item in parameters or ():
        if isinstance(item, str):
            found.append({"name": item, "required": True})
        else:
            found.append({"name": str(item["name"]), "required": bool(item.get("required"))})
    return found


def apply_declared_directory() -> dict[str, int]:
    """Create or update the rows ``MMC["DIRECTORY"]`` declares (origin
    ``SETTINGS``), and mark inactive the declared rows it no longer names.
    Returns how many of each kind it declares. The setting is validated by
    :check:`django_mmc.E023`."""
    declared = mmc_settings.DIRECTORY or {}
    groups = list(declared.get("channel_groups") or ())
    templates = list(declared.get("templates") or ())
    with transaction.atomic(using=database()):
        for item in groups:
            group, _ = ChannelGroup.objects.update_or_create(
                platform_id=str(item["id"]),
                defaults={"name": item.get("name", ""), "is_active": True,
                          "origin": Origin.SETTINGS})
            set_group_channel_types(group, item.get("channel_types") or ())
        gone = ChannelGroup.objects.filter(origin=Origin.SETTINGS).exclude(
            platform_id__in=[str(item["id"]) for item in groups])
        Channel.objects.filter(group__in=gone).update(is_active=False)
        gone.update(is_active=False)
        for item in templates:
            Template.objects.update_or_create(
                platform_id=str(item["id"]),
                defaults={"name": item.get("name") or str(item["id"]),
                          "description": item.get("description", ""),
                          "channel_types": [str(t).upper()
                                            for t in item.get("channel_types") or ()],
                          "parameters": normalise_parameters(item.get("parameters") or ()),
                          "preview": item.get("preview", ""), "is_active": True,
                          "origin": Origin.SETTINGS})
        Template.objects.filter(origin=Origin.SETTINGS).exclude(
            platform_id__in=[str(item["id"]) for item in templates]).update(is_active=False)
    return {"channel_groups": len(groups), "templates": len(templates)}

