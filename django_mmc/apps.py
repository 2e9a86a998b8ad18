from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DjangoMMCConfig(AppConfig):
    name = "django_mmc"
    label = "django_mmc"
    verbose_name = _("Message My Customer")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks and the setting_changed receiver.
        from . import checks, conf  # noqa: F401
        from .client import auth

        auth.silence_token_loggers()
