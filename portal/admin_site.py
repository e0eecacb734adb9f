"""The admin site: django-otp's OTPAdminSite, so no page opens without a verified device.

The login page asks for username, password and one code. A staff user whose password is
right but who has no confirmed TOTP device is handed to the enrolment
(``portal.accounts.views.enrol``) only with an open invitation (``manage.py
invite_staff``) opened in the same browser; otherwise the login is refused.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django_otp.admin import OTPAdminSite

from portal.accounts.forms import PortalLoginForm
from portal.accounts.middleware import SESSION_EXPIRED_FLAG


class PortalLoginView(LoginView):
    def form_invalid(self, form: PortalLoginForm) -> HttpResponse:  # type: ignore[override]
        if form.enrolment_user is not None:
            from portal.accounts.views import begin_enrolment

            return begin_enrolment(
                self.request,
                form.enrolment_user,
                invitation_id=form.enrolment_invitation_id,
                next_url=self.get_redirect_url(),
            )
        return super().form_invalid(form)


class PortalAdminSite(OTPAdminSite):  # type: ignore[misc]  # django-otp ships no type hints
    site_header = "Submission Portal"
    site_url = None  # the portal has no public site to link to
    site_title = "Submission Portal"
    index_title = "Operations"
    # The app list beside every page costs a laptop screen a third of its width; the
    # index and the breadcrumbs lead everywhere it does.
    enable_nav_sidebar = False
    login_form = PortalLoginForm
    login_template = "admin/portal_login.html"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def index(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        # Imported here: the apps' selectors load models, which the admin site predates.
        from deadletters.selectors import index_counts

        context = {**index_counts(user=request.user), **(extra_context or {})}
        response: TemplateResponse = super().index(request, extra_context=context)
        return response

    @method_decorator(never_cache)
    @login_not_required
    def login(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "GET" and self.has_permission(request):
            return HttpResponseRedirect(reverse("admin:index", current_app=self.name))
        context = {
            **self.each_context(request),
            "title": "Log in",
            "subtitle": None,
            "app_path": request.get_full_path(),
            "username": request.user.get_username(),
            "session_expired": request.session.pop(SESSION_EXPIRED_FLAG, False),
        }
        if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
            context[REDIRECT_FIELD_NAME] = reverse("admin:index", current_app=self.name)
        context.update(extra_context or {})
        request.current_app = self.name
        view = PortalLoginView.as_view(
            extra_context=context,
            authentication_form=self.login_form,
            template_name=self.login_template,
        )
        # as_view() is typed for any view's HttpResponseBase; LoginView renders a template
        # or redirects, both HttpResponse (AdminSite.login itself returns the same call).
        return cast(HttpResponse, view(request))
