"""One ASGI application: HTTP (Django) and websockets (channels) on the same port."""
import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django_asgi = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from apps.core.limits import BodyLimit  # noqa: E402
from apps.images.asgi import StreamedImageData  # noqa: E402
from apps.objects.asgi import DirectObjects  # noqa: E402
from portal.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # image data (PUT /image/v2/images/{id}/file|stage) streams to the store without Django's spooling;
        # every other body is capped at STRATUS_MAX_JSON_BODY before Django spools it; object GET/HEAD/PUT
        # (Swift's and S3's) go to their views without Django's handler, bodies streamed (apps/objects/asgi.py)
        "http": StreamedImageData(BodyLimit(DirectObjects(django_asgi))),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# What is loaded by now (Django, every app, the URLconf and its views) lives as long as the worker: moved
# out of the collector's generations, a full collection no longer walks it. A large answer (1,000 server
# bodies: ~40,000 objects) sets off several full collections; in-process that list took 255 ms, 184 ms
# with this (docs/performance.md).
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018 - imports every view now, so they are frozen too
gc.collect()
gc.freeze()
