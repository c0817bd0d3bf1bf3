"""`/api/v1/`: each app's API views (`<app>/api.py`) under one router."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import DefaultRouter

from analytics import api as analytics_api
from channels_app import api as channels_api
from conversations import api as conversations_api
from customers import api as customers_api
from routing import api as routing_api

router = DefaultRouter(trailing_slash=True)
router.register("customers", customers_api.CustomerViewSet, basename="customer")
router.register("conversations", conversations_api.ConversationViewSet, basename="conversation")
router.register("inboxes", channels_api.InboxViewSet, basename="inbox")
router.register("teams", routing_api.TeamViewSet, basename="team")
router.register("agents", routing_api.AgentViewSet, basename="agent")

urlpatterns = [
    path("me/", customers_api.MeView.as_view(), name="me"),
    path("conversations/<int:number>/sla/", routing_api.ConversationSlaView.as_view(), name="conversation-sla"),
    path("kpis/", analytics_api.KpiView.as_view(), name="kpis"),
    *router.urls,
]
