"""The test URLs plus one ordinary view, to show what a host project's
middleware does to views that are not exempt."""

from django.http import HttpResponse
from django.urls import include, path


def ordinary_view(request):
    return HttpResponse("ok")


urlpatterns = [
    path("ordinary/", ordinary_view),
    path("", include("tests.urls")),
]
