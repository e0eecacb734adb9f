"""The pages outside the admin and the API: ``/`` says what this service is and where to go.

Nothing here reads data: the page is the same for everyone, logged in or not, so it
names no tenant, user or count.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.http import require_safe
from django.views.generic import RedirectView


@login_not_required
@require_safe
def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/landing.html")


#: Browsers ask for /favicon.ico whatever the page links; answer with the portal's icon.
favicon = login_not_required(RedirectView.as_view(url=static("portal/favicon.svg"), permanent=True))
