"""Webhook events keep only the indexes a query uses: every delivery writes
each of them. The unique event id becomes a named constraint (created before
the old one goes, so it is never missing), and the text columns lose the
extra ``LIKE`` indexes PostgreSQL got with ``unique``/``db_index``."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("django_mmc", "0003_polling_dialogues_and_event_sweeps"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="webhookevent",
            constraint=models.UniqueConstraint(fields=("event_id",), name="mmc_event_id_unique"),
        ),
        migrations.AlterField(
            model_name="webhookevent",
            name="event_id",
            field=models.CharField(max_length=128, verbose_name="event id"),
        ),
        migrations.RemoveIndex(
            model_name="webhookevent",
            name="mmc_event_waiting_idx",
        ),
        migrations.AlterField(
            model_name="webhookevent",
            name="agent_key",
            field=models.CharField(max_length=64, verbose_name="agent"),
        ),
        migrations.AlterField(
            model_name="webhookevent",
            name="event_type",
            field=models.CharField(max_length=64, verbose_name="event type"),
        ),
        migrations.AlterField(
            model_name="webhookevent",
            name="subject_id",
            field=models.CharField(blank=True, max_length=64, verbose_name="about"),
        ),
        migrations.AddIndex(
            model_name="webhookevent",
            index=models.Index(fields=["subject_id"], name="mmc_event_subject_idx"),
        ),
    ]
