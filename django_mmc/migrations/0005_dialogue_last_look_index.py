"""An index for the closed dialogues the transcript poll has not looked at
since they closed (``django_mmc.polling.poll_dialogues``)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("django_mmc", "0004_leaner_webhook_event_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="dialogue",
            index=models.Index(
                condition=models.Q(
                    ("status", "CLOSED"),
                    models.Q(("checked_at__isnull", True),
                             ("checked_at__lte", models.F("closed_at")), _connector="OR"),
                ),
                fields=["closed_at"],
                name="mmc_dialogue_last_look_idx",
            ),
        ),
    ]
