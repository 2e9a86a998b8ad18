"""Syncing channel groups, channels and templates from the platform."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .client import get_client
from .dispatch import database
from .models import Channel, ChannelGroup, Template


def sync_directory() -> dict[str, int]:
    """Fetch every channel group (with its channels) and template and bring
    the local copies up to date. What disappeared upstream is marked inactive,
    never deleted, so notifications that refer to it keep working. Returns
    counts of what is active now."""
    client = get_client()
    groups = client.list_channel_groups()
    templates = client.list_templates()
    now = timezone.now()
    with transaction.atomic(using=database()):
        seen_groups, seen_channels = [], []
        for remote in groups:
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
        ChannelGroup.objects.exclude(platform_id__in=seen_groups).update(is_active=False)
        Channel.objects.exclude(platform_id__in=seen_channels).update(is_active=False)
        seen_templates = []
        for remote in templates:
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
            seen_templates.append(remote.id)
        Template.objects.exclude(platform_id__in=seen_templates).update(is_active=False)
    return {"channel_groups": len(seen_groups), "channels": len(seen_channels),
            "templates": len(seen_templates)}
