from django.contrib import admin
from django.urls import include, path

from .views import BareView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("mmc/", include("django_mmc.urls")),
    path("bare/", BareView.as_view()),
]
