from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import JsonResponse
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from customers.views import tenant_switch


def healthz(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("", RedirectView.as_view(pattern_name="workspace:home", permanent=False)),
    path("healthz", healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/password/reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("switch-tenant/", tenant_switch, name="tenant_switch"),
    path("app/chat/", include("channels_app.adapters.web_chat.agent_urls")),
    path("app/", include("conversations.urls")),
    path("analytics/", include("analytics.urls")),
    path("hooks/", include("channels_app.urls")),
    # Satisfaction surveys' public pages (the token in the link is the credential).
    path("csat/", include("conversations.csat_urls")),
    path("widget/", include("channels_app.adapters.web_chat.widget_urls")),
    # The web-chat widget's endpoints (channels_app/adapters/web_chat/PROTOCOL.md).
    path("chat/", include("channels_app.adapters.web_chat.urls")),
    path("api/v1/", include(("omnidesk.api_urls", "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]
