"""django_mmc's admin: every model registered on the default admin site.

Platform-owned rows (notifications, dialogues, messages, webhook events, the
directory) are read-only; what staff may do to them goes through explicit
views and actions that call the public API, each behind its own permission:

- ``django_mmc.send_notification``: "Send notification", "Retry";
- ``django_mmc.cancel_notification``: "Cancel" (scheduled or waiting ones);
- ``django_mmc.reply_dialogue``: "Open dialogue" and the reply box;
- ``django_mmc.close_dialogue``: "Close" and "Close selected dialogues";
- ``django_mmc.sync_directory``: "Sync from the platform";
- ``django_mmc.send_notification``: also "Refresh status now" (it asks the platform);
- ``django_mmc.reply_dialogue``: also claiming a dialogue ("I am answering this");
- ``django_mmc.reprocess_webhookevent``: "Process again";
- ``django_mmc.change_recipient``: editing a recipient and recording its consent;
- ``django_mmc.delete_recipient``: forgetting a person (erasing their personal data).

A URL the user may not use answers with the admin's own 403 page. The
default admin site's index gets the support inbox's count (see
``admin/django_mmc/index.html``) unless the site has an index template of
its own. A site with its own ``AdminSite`` can register the same classes on
it, and load ``django_mmc_admin``'s ``mmc_inbox`` tag in its index.
"""

from django.contrib import admin

from ..models import (
    ChannelGroup,
    ConsentChange,
    Dialogue,
    Message,
    Notification,
    Recipient,
    Template,
    WebhookEvent,
)
from .dialogues import DialogueAdmin, MessageAdmin
from .directory import ChannelGroupAdmin, ChannelInline, TemplateAdmin
from .notifications import NotificationAdmin
from .recipients import ConsentChangeAdmin, ConsentChangeInline, RecipientAdmin
from .webhooks import WebhookEventAdmin

admin.site.register(Recipient, RecipientAdmin)
admin.site.register(ConsentChange, ConsentChangeAdmin)
admin.site.register(ChannelGroup, ChannelGroupAdmin)
admin.site.register(Template, TemplateAdmin)
admin.site.register(Notification, NotificationAdmin)
admin.site.register(Dialogue, DialogueAdmin)
admin.site.register(Message, MessageAdmin)
admin.site.register(WebhookEvent, WebhookEventAdmin)

if admin.site.index_template is None:
    admin.site.index_template = "admin/django_mmc/index.html"

__all__ = [
    "ChannelGroupAdmin",
    "ChannelInline",
    "ConsentChangeAdmin",
    "ConsentChangeInline",
    "DialogueAdmin",
    "MessageAdmin",
    "NotificationAdmin",
    "RecipientAdmin",
    "TemplateAdmin",
    "WebhookEventAdmin",
]
