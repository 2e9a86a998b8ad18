from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    # The webhook endpoints: /mmc/webhooks/support/ and /mmc/webhooks/sales/.
    path("mmc/", include("django_mmc.urls")),
]
