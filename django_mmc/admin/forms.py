"""Forms of django_mmc's admin views.

They check only what a form must (a choice was made, a field is filled in);
everything about the platform's rules is left to the public API the view
calls, so the admin validates exactly like business code does.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.sites import AdminSite
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..conf import mmc_settings
from ..models import Channel, ChannelGroup, Dialogue, Notification, Recipient, Template
from ..models.recipients import normalize_customer_id, normalize_phone_number
from ..status import Priority

#: Prefix of the form field of each template parameter: ``param_first_name``.
PARAM_PREFIX = "param_"


def channel_type_choices() -> list[tuple[str, str]]:
    """A "default" choice and every channel type the directory knows."""
    types = Channel.objects.filter(is_active=True).order_by().values_list(
        "channel_type", flat=True).distinct()
    return [("", _("Default"))] + [(t, t) for t in sorted(set(types))]


class _RecipientOrNumberForm(forms.Form):
    """A recipient picked from the table, or an E.164 number typed in."""

    recipient = forms.ModelChoiceField(
        label=_("Recipient"), queryset=Recipient.objects.all(), required=False,
    )
    to = forms.CharField(
        label=_("or phone number"), required=False, max_length=32,
        help_text=_("In E.164 form: + country code and number, e.g. +353861234567."),
        widget=forms.TextInput(attrs={"id": "mmc-to", "autocomplete": "off",
                                      "placeholder": "+353861234567"}),
    )

    #: The model whose ``recipient`` foreign key drives the autocomplete.
    autocomplete_model: type = Notification

    def __init__(self, *args: Any, admin_site: AdminSite, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The admin's own autocomplete (search as you type), so a table of a
        # million recipients is never rendered into a <select>.
        field = self.fields["recipient"]
        field.widget = AutocompleteSelect(
            self.autocomplete_model._meta.get_field("recipient"), admin_site,
            attrs={"id": "mmc-recipient"},
        )
        field.widget.choices = field.choices

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        recipient, to = cleaned.get("recipient"), (cleaned.get("to") or "").strip()
        if "recipient" in self.errors:
            return cleaned
        if recipient is None and not to:
            self.add_error("to", _("Pick a recipient or type a phone number."))
        elif recipient is not None and to:
            self.add_error("to", _("Pick a recipient or type a phone number, not both."))
        return cleaned

    @property
    def target(self) -> Recipient | str:
        """What the API is called with: the Recipient or the typed number."""
        return self.cleaned_data.get("recipient") or self.cleaned_data["to"].strip()

    @property
    def target_field(self) -> str:
        """The form field an API error about ``to`` belongs on."""
        return "recipient" if self.cleaned_data.get("recipient") else "to"


class TemplateParametersMixin:
    """One text field per parameter of a chosen template (``param_<name>``),
    with the template's preview filled in from what was typed."""

    fields: dict[str, forms.Field]
    cleaned_data: dict[str, Any]

    def add_parameter_fields(self, template: Template | None) -> None:
        self.chosen_template = template
        #: parameter name -> form field name
        self.parameter_fields: dict[str, str] = {}
        if template is None:
            return
        for parameter in template.parameters:
            if not isinstance(parameter, dict) or not parameter.get("name"):
                continue
            name = str(parameter["name"])
            field_name = PARAM_PREFIX + name
            required = bool(parameter.get("required"))
            # Not required at the form level: the public API says which
            # required parameters are missing, together with every other
            # problem, so the user sees all of them at once.
            field = forms.CharField(
                label=name, required=False, max_length=1024,
                help_text=_("Required") if required else _("Optional"),
                widget=forms.TextInput(attrs={"class": "vTextField mmc-param",
                                              "data-parameter": name}),
            )
            field.parameter_required = required  # type: ignore[attr-defined]
            self.fields[field_name] = field
            self.parameter_fields[name] = field_name

    def parameter_bound_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.parameter_fields.values()]  # type: ignore[index]

    @property
    def context(self) -> dict[str, str]:
        """The parameters filled in; empty optional ones are left out."""
        values = {}
        for name, field_name in self.parameter_fields.items():
            value = self.cleaned_data.get(field_name)
            if value not in (None, ""):
                values[name] = value
        return values

    def preview(self) -> str:
        """The chosen template's preview, with what was typed filled in."""
        template = self.chosen_template
        if template is None:
            return ""
        values = {}
        for name, field_name in self.parameter_fields.items():
            value = self[field_name].value()  # type: ignore[index]
            if value not in (None, ""):
                values[name] = value
        return template.render_preview(values)


def channel_group_field() -> forms.ModelChoiceField:
    """The channel group of a send or a dialogue: an active one, or the default."""
    return forms.ModelChoiceField(
        label=_("Channel group"), required=False,
        queryset=ChannelGroup.objects.filter(is_active=True),
        empty_label=_("Default"), widget=forms.Select(attrs={"id": "mmc-channel-group"}),
    )


def channel_type_field() -> forms.ChoiceField:
    """The channel type of a send or a dialogue (its choices are set per form)."""
    return forms.ChoiceField(
        label=_("Channel type"), required=False,
        widget=forms.Select(attrs={"id": "mmc-channel-type"}),
    )


class SendNotificationForm(TemplateParametersMixin, _RecipientOrNumberForm):
    """Recipient, template, channel, options and one field per template parameter."""

    template = forms.ModelChoiceField(
        label=_("Template"), queryset=Template.objects.filter(is_active=True).order_by("name"),
        empty_label=_("Choose a template"),
        widget=forms.Select(attrs={"id": "mmc-template",
                                   "data-mmc-autosubmit": "mmc-choose-template"}),
    )
    channel_group = channel_group_field()
    channel_type = channel_type_field()
    priority = forms.ChoiceField(
        label=_("Priority"), required=False, choices=Priority.choices,
        initial=Priority.NORMAL, widget=forms.Select(attrs={"id": "mmc-priority"}),
    )
    send_at = forms.DateTimeField(
        label=_("Send at"), required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "id": "mmc-send-at"},
                                   format="%Y-%m-%dT%H:%M"),
    )
    expires_at = forms.DateTimeField(
        label=_("Give up after"), required=False,
        help_text=_("Not sent after this time (e.g. a code that is no longer valid)."),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "id": "mmc-expires-at"},
                                   format="%Y-%m-%dT%H:%M"),
    )

    def __init__(self, *args: Any, template: Template | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["send_at"].help_text = _("Leave empty to send now. Times are in %(tz)s.") % {
            "tz": timezone.get_current_timezone_name()}
        self.fields["channel_type"].choices = channel_type_choices()
        self.add_parameter_fields(template)


class OpenDialogueForm(TemplateParametersMixin, _RecipientOrNumberForm):
    """Recipient, agent and channel group of a new dialogue, and the
    template it opens with (optional), with one field per parameter."""

    autocomplete_model = Dialogue

    agent = forms.ChoiceField(label=_("Agent"), widget=forms.Select(attrs={"id": "mmc-agent"}))
    channel_group = channel_group_field()
    channel_type = channel_type_field()
    template = forms.ModelChoiceField(
        label=_("Opening template"), required=False,
        queryset=Template.objects.filter(is_active=True).order_by("name"),
        empty_label=_("None"),
        help_text=_("WhatsApp needs a template to start a conversation."),
        widget=forms.Select(attrs={"id": "mmc-template",
                                   "data-mmc-autosubmit": "mmc-choose-template"}),
    )

    def __init__(self, *args: Any, template: Template | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_parameter_fields(template)
        # Keys and platform ids only: an Agent's str() never includes its secrets.
        self.fields["agent"].choices = [
            (key, str(agent)) for key, agent in mmc_settings.agents.items()
        ]
        if mmc_settings.DEFAULT_AGENT and not self.is_bound:
            self.fields["agent"].initial = mmc_settings.DEFAULT_AGENT
        self.fields["channel_type"].choices = channel_type_choices()


class ReplyForm(forms.Form):
    """The reply box of a dialogue."""

    text = forms.CharField(
        label=_("Reply"), max_length=4096, strip=True,
        widget=forms.Textarea(attrs={"id": "mmc-reply-text", "rows": 3,
                                     "class": "vLargeTextField mmc-reply-text"}),
    )


class TemplateReplyForm(TemplateParametersMixin, forms.Form):
    """A template message in a dialogue: the template's parameters."""

    def __init__(self, *args: Any, template: Template | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_parameter_fields(template)


class RecipientAdminForm(forms.ModelForm):
    """A recipient's number is stored in E.164 form, whatever was typed; a
    recipient needs a number, the platform's customer id, or both."""

    class Meta:
        model = Recipient
        fields = ["phone_number", "customer_id", "name", "metadata"]

    def clean_phone_number(self) -> str | None:
        value = self.cleaned_data.get("phone_number")
        if not value:
            return None
        try:
            return normalize_phone_number(value)
        except ValidationError as err:
            raise ValidationError(err.messages, code="invalid_phone_number") from None

    def clean_customer_id(self) -> str | None:
        value = self.cleaned_data.get("customer_id")
        if not value:
            return None
        try:
            return normalize_customer_id(value)
        except ValidationError as err:
            raise ValidationError(err.messages, code="invalid_customer_id") from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        number = cleaned.get("phone_number", self.instance.phone_number)
        customer_id = cleaned.get("customer_id", self.instance.customer_id)
        if not self.errors and not number and not customer_id:
            raise ValidationError(_("Give a phone number or a platform customer id."),
                                  code="required")
        return cleaned


def _words(value: str) -> list[str]:
    """``"WHATSAPP, sms"`` as ``["WHATSAPP", "SMS"]``, in order, once each."""
    return list(dict.fromkeys(w.strip().upper() for w in (value or "").split(",") if w.strip()))


def _names(value: str) -> list[str]:
    return list(dict.fromkeys(w.strip() for w in (value or "").split(",") if w.strip()))


class ChannelGroupEntryForm(forms.ModelForm):
    """A channel group the platform does not list, entered by hand: its id
    (provided at setup), its name and its channel types."""

    channel_types_text = forms.CharField(
        label=_("Channel types"), max_length=200,
        help_text=_("Separated by commas, e.g. WHATSAPP, SMS."))

    class Meta:
        model = ChannelGroup
        fields = ["platform_id", "name", "is_active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["channel_types_text"].initial = ", ".join(self.instance.channel_types())

    def clean_channel_types_text(self) -> list[str]:
        return _words(self.cleaned_data.get("channel_types_text", ""))


class TemplateEntryForm(forms.ModelForm):
    """A template the platform does not list, entered by hand: its id,
    name, channel types and parameters."""

    channel_types_text = forms.CharField(
        label=_("Channel types"), max_length=200, required=False,
        help_text=_("Separated by commas, e.g. WHATSAPP, SMS."))
    required_parameters = forms.CharField(
        label=_("Required parameters"), max_length=1000, required=False,
        help_text=_("Names separated by commas, e.g. first_name, order_number."))
    optional_parameters = forms.CharField(
        label=_("Optional parameters"), max_length=1000, required=False,
        help_text=_("Names separated by commas."))

    class Meta:
        model = Template
        fields = ["platform_id", "name", "description", "preview", "is_active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            required = set(self.instance.required_parameters)
            names = self.instance.parameter_names
            self.fields["channel_types_text"].initial = ", ".join(
                str(t) for t in self.instance.channel_types or [])
            self.fields["required_parameters"].initial = ", ".join(
                n for n in names if n in required)
            self.fields["optional_parameters"].initial = ", ".join(
                n for n in names if n not in required)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        required = _names(cleaned.get("required_parameters", ""))
        optional = _names(cleaned.get("optional_parameters", ""))
        both = sorted(set(required) & set(optional))
        if both:
            self.add_error("optional_parameters", _(
                "%(names)s cannot be both required and optional.") % {"names": ", ".join(both)})
        self.instance.channel_types = _words(cleaned.get("channel_types_text", ""))
        self.instance.parameters = (
            [{"name": n, "required": True} for n in required]
            + [{"name": n, "required": False} for n in optional if n not in required])
        return cleaned
