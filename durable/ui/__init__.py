"""The dashboard: a small ASGI app that shows and steers the runs of one durable log.

``durable ui`` serves it with uvicorn; :func:`asgi_app` returns it to mount in any ASGI
server. It reads and acts only through the public :class:`~durable.Client`.
Needs the ``ui`` extra: ``pip install 'durable-pipelines[ui]'``.
"""

from durable.ui.config import UiConfig
from durable.ui.server import asgi_app

__all__ = ["UiConfig", "asgi_app"]
