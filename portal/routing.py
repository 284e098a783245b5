from django.urls import path

from apps.compute.consumers import SerialConsoleConsumer, VncConsoleConsumer
from apps.dashboard.consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/live/", LiveConsumer.as_asgi()),
    path("ws/compute/instances/<str:server_id>/console/", SerialConsoleConsumer.as_asgi()),
    path("ws/compute/instances/<str:server_id>/vnc/", VncConsoleConsumer.as_asgi()),
    path("ws/console/serial/", SerialConsoleConsumer.as_asgi()),  # ?token= (os-remote-consoles)
    path("ws/console/vnc/", VncConsoleConsumer.as_asgi()),
]
