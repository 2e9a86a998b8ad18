# yourproject/urls.py
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # One webhook endpoint per agent: /mmc/webhooks/<agent key>/
    path("mmc/", include("django_mmc.urls")),
]
