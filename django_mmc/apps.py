from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DjangoMMCConfig(AppConfig):
    name = "django_mmc"
    label = "django_mmc"
    verbose_name = _("Message My Customer")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The system checks and the setting_changed receivers register
        # themselves on import; so do the tasks, each with
        # django_mmc.dispatch for the kind of work it does.
        from . import checks, conf, tasks, transitions  # noqa: F401
        from .client import auth
        from .models import Notification
        from .status import Status
        from .workers.fallback import start_fallback

        # A notification that fails is tried on its next channel type.
        transitions.on_entering(Notification, Status.FAILED)(start_fallback)
        auth.silence_token_loggers()
