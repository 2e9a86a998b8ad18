# As in a Django project's package: load the Celery app when Django starts, so
# every process of the suite hands tasks to the configured broker.
from .celery_app import app as celery_app

__all__ = ["celery_app"]
