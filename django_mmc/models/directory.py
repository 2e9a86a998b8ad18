from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


class Origin(models.TextChoices):
    """Where a channel group or template row came from. Only rows synced from
    the platform are ever marked inactive by a sync."""

    PLATFORM = "PLATFORM", _("Synced from the platform")
    ADMIN = "ADMIN", _("Entered by hand")
    SETTINGS = "SETTINGS", _("Declared in the settings")


class ChannelGroup(models.Model):
    """A set of channels (one WhatsApp number, one SMS sender...) serving one
    business function; synced from the platform, or entered by hand or in
    ``MMC["DIRECTORY"]`` where the platform lists none."""

    platform_id = models.CharField(_("platform id"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    origin = models.CharField(_("origin"), max_length=16, choices=Origin,
                              default=Origin.PLATFORM)
    synced_at = models.DateTimeField(_("last synced"), null=True, blank=True)

    class Meta:
        verbose_name = _("channel group")
        verbose_name_plural = _("channel groups")
        ordering = ["name", "platform_id"]
        permissions = [
            ("sync_directory", _("Can sync channel groups and templates from the platform")),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.platform_id})" if self.name else self.platform_id

    def channel_types(self) -> list[str]:
        return sorted(
            {c.channel_type for c in self.channels.all() if c.is_active}  # type: ignore[attr-defined]
        )


class Channel(models.Model):
    """One messaging channel of a channel group. Channel types the platform
    adds later are stored as they come."""

    platform_id = models.CharField(_("platform id"), max_length=64, unique=True)
    group = models.ForeignKey(
        ChannelGroup, on_delete=models.CASCADE, related_name="channels",
        verbose_name=_("channel group"),
    )
    name = models.CharField(_("name"), max_length=200, blank=True)
    channel_type = models.CharField(_("channel type"), max_length=32, db_index=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        ordering = ["group", "channel_type", "platform_id"]

    def __str__(self) -> str:
        return self.name or f"{self.channel_type} {self.platform_id}"


class Template(models.Model):
    """A message template defined on the platform, with its parameters.

    A template that disappears upstream is marked inactive, never deleted
    while a notification or message refers to it. Where the platform lists
    none, templates are entered by hand or in ``MMC["DIRECTORY"]``."""

    platform_id = models.CharField(_("platform id"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200, db_index=True)
    description = models.TextField(_("description"), blank=True)
    channel_types = models.JSONField(_("channel types"), default=list, blank=True)
    #: ``[{"name": "first_name", "required": true}, ...]``
    parameters = models.JSONField(_("parameters"), default=list, blank=True)
    preview = models.TextField(_("preview"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    origin = models.CharField(_("origin"), max_length=16, choices=Origin,
                              default=Origin.PLATFORM)
    synced_at = models.DateTimeField(_("last synced"), null=True, blank=True)

    class Meta:
        verbose_name = _("template")
        verbose_name_plural = _("templates")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name or self.platform_id

    @property
    def parameter_names(self) -> list[str]:
        return [p["name"] for p in self.parameters if isinstance(p, dict) and "name" in p]

    @property
    def required_parameters(self) -> list[str]:
        return [
            p["name"] for p in self.parameters
            if isinstance(p, dict) and "name" in p and p.get("required")
        ]

    def validate_context(self, context: Any, *, field: str = "context") -> dict[str, str]:
        """The context as ``{name: text}``, or a ``ValidationError`` naming
        every missing, unknown or malformed parameter."""
        if context is None:
            context = {}
        if not isinstance(context, dict):
            raise ValidationError(
                {field: _("The context must be a mapping of parameter names to values.")}
            )
        errors = []
        known = set(self.parameter_names)
        unknown = sorted(str(k) for k in context if k not in known)
        if unknown:
            errors.append(ValidationError(
                _("Template %(template)s has no parameter(s) %(names)s."),
                code="unknown_parameter",
                params={"template": self, "names": ", ".join(unknown)},
            ))
        missing = [
            name for name in self.required_parameters
            if context.get(name) in (None, "")
        ]
        if missing:
            errors.append(ValidationError(
                _("Template %(template)s requires parameter(s) %(names)s."),
                code="missing_parameter",
                params={"template": self, "names": ", ".join(missing)},
            ))
        cleaned = {}
        for key, value in context.items():
            if isinstance(value, (dict, list, tuple, set)):
                errors.append(ValidationError(
                    _("Parameter %(name)s must be text or a number."),
                    code="invalid_parameter", params={"name": key},
                ))
            elif value is not None:
                cleaned[str(key)] = str(value)
        if errors:
            raise ValidationError({field: errors})
        return cleaned

    def render_preview(self, context: dict[str, Any] | None = None) -> str:
        """The preview text with ``{{name}}`` placeholders filled in."""
        text = self.preview
        for name, value in (context or {}).items():
            text = text.replace("{{" + str(name) + "}}", str(value))
        return text
