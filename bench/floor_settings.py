"""Settings of the API floor: the bench settings with a bare URLconf and no middleware.

Same database settings (persistent connections, health checks) and the same gunicorn
command as the product; only the request path differs (see ``bench/floor_urls.py``).
"""

from __future__ import annotations

from bench.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"
MIDDLEWARE = []
