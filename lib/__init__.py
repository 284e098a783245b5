"""Plain Python that both sides need: the portal's apps (Django) and the nodes' workers (Celery) import it;
it imports neither of them, nor Django, nor Celery.

- ``imageformat``, ``imagestore``: the image API checks and stores an upload; nodes check and read the
  same image.
- ``configdrive``: the config drive a node builds and the metadata service serves the same content.
- ``netmodel``: the desired network state of a node (``NodeState``...), made by the networks selectors
  and applied by the network agent's driver; device names (``tap_name``) the hypervisor uses too.
apps/ never imports workers/ (tasks are sent by name); what they share lives here."""
