"""The test suite's view of the Celery broker, whichever it is (Redis or
RabbitMQ): how many tasks wait in a queue, and emptying one.

Both go through kombu, as Celery does, so the same test runs on either
broker. A queue the broker does not know holds nothing.
"""

from __future__ import annotations

from kombu.exceptions import ChannelError, OperationalError


def _connection():
    from tests.celery_app import app

    return app.connection_for_write()


def queue_length(name: str) -> int:
    """Tasks waiting in the queue ``name`` (not those a worker has reserved)."""
    with _connection() as connection:
        # A passive declare only asks; on RabbitMQ a missing queue closes the
        # channel, so each question gets a channel of its own.
        channel = connection.channel()
        try:
            return channel.queue_declare(queue=name, passive=True).message_count
        except ChannelError:
            return 0
        finally:
            try:
                channel.close()
            except (ChannelError, OperationalError, OSError):
                pass


def purge(*names: str) -> None:
    """Drop every task waiting in these queues."""
    with _connection() as connection:
        for name in names:
            channel = connection.channel()
            try:
                channel.queue_purge(name)
            except ChannelError:
                pass  # no such queue: nothing waits in it
            finally:
                try:
                    channel.close()
                except (ChannelError, OperationalError, OSError):
                    pass


def broker_kind() -> str:
    """``"redis"`` or ``"amqp"``: the transport the test settings chose."""
    from django.conf import settings

    return "amqp" if str(settings.CELERY_BROKER_URL).startswith(("amqp", "pyamqp")) else "redis"
