from django.contrib import admin
from django.urls import include, path

from portal import landing

urlpatterns = [
    path("", landing.landing, name="landing"),
    path("favicon.ico", landing.favicon),
    # /metrics, /healthz, /readyz and admin/operations/ (before the admin, which would
    # take "operations" for an app label)
    path("", include("portal.observability.urls")),
    path("admin/", admin.site.urls),
]
urlpatterns += [path("accounts/", include("portal.accounts.urls"))]
urlpatterns += [path("hooks/", include("intents.hook_urls"))]
urlpatterns += [
    path("api/v1/", include("portal.events.urls")),
    path("api/v1/", include("intents.urls")),
    path("api/", include("portal.api.urls")),  # the rest of /api/: problem+json 404
]
# Under /api/ these answer problem+json; elsewhere they defer to Django's defaults.
handler400 = "portal.api.problems.handler400"
handler404 = "portal.api.problems.handler404"
handler500 = "portal.api.problems.handler500"
