"""One ASGI application: HTTP (Django) and websockets (channels) on the same port."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django_asgi = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from apps.core.limits import BodyLimit  # noqa: E402
from apps.images.asgi import StreamedImageData  # noqa: E402
from portal.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # image data (PUT /image/v2/images/{id}/file|stage) streams to the store without Django's spooling;
        # every other body is capped at STRATUS_MAX_JSON_BODY before Django spools it
        "http": StreamedImageData(BodyLimit(django_asgi)),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
