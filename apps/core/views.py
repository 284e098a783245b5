from django.http import HttpRequest, JsonResponse

from apps.core.api import error_body

STYLES = {"compute": "nova", "volume": "nova", "network": "neutron", "image": "plain",
          "object-store": "plain", "orchestration": "plain"}


def not_implemented_service(request: HttpRequest, service: str) -> JsonResponse:  # noqa: ARG001
    """A catalog endpoint whose component is not built yet: say so, in that API's error format."""
    body = error_body(STYLES.get(service, "plain"), 501,
                      f"The {service} service is listed in the catalog but not implemented yet in this Stratus.")
    return JsonResponse(body, status=501)
