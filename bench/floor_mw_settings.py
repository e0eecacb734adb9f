"""Settings of the second API floor: the same bare view behind the product's middleware.

Divides the gap between the product and the bare floor into what the project's
middleware stack costs every request (sessions, OTP, CSP, axes, request ids …) and what
DRF, authentication, validation and the intake rules cost.
"""

from __future__ import annotations

from bench.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"
