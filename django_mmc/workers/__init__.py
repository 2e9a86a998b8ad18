"""What the Celery tasks run: plain functions, one module per job.

* :mod:`.notifications`: deliver a notification, or a campaign's batch.
* :mod:`.dialogues`: open a dialogue on the platform, deliver its messages
  in order, close it.
* :mod:`.outbox`: the sweeper that hands over what was never handed over.
* :mod:`.fallback`: a failed notification tried again on the next channel.

Each takes a row's primary key, claims the row, calls the platform through
the client, and records the result through :mod:`django_mmc.transitions`
with the one retry policy of :mod:`django_mmc.policy`. They return a
:class:`~django_mmc.policy.Result`, or raise
:class:`~django_mmc.policy.RetryLater` for the task to retry.
"""
