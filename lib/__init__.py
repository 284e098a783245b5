"""Plain Python that both sides need: the portal's apps (Django) and the nodes' workers (Celery) import it;
it imports neither of them, nor Django, nor Celery. Image format checks (``imageformat``) and the image
store (``imagestore``): the image API checks and stores an upload, nodes check and read the same image.
apps/ never imports workers/ (tasks are sent by name); what they share lives here."""
