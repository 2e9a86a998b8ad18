"""URLs: ``path("mmc/", include("django_mmc.urls"))`` exposes one webhook
endpoint per agent of ``MMC['AGENTS']`` at ``mmc/webhooks/<agent key>/``."""

from django.urls import path

from .webhooks.views import WebhookView

app_name = "django_mmc"

urlpatterns = [
    path("webhooks/<str:agent_key>/", WebhookView.as_view(), name="webhook"),
]
