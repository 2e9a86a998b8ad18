"""The ceiling of the webhook scenario: a bare DRF view on the same server,
behind the same middleware, that does nothing and answers 204."""

from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class FirstRenderer(BaseContentNegotiation):
    """Whatever ``Accept`` says (the platform sends the JSON:API type), as the
    webhook view does: no 406."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class BareView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    content_negotiation_class = FirstRenderer

    def post(self, request, *args, **kwargs):
        return Response(status=204)
