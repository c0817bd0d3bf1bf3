"""`/api/v1/`: each app's API views (`<app>/api.py`) under one router."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import DefaultRouter

from customers import api as customers_api

router = DefaultRouter(trailing_slash=True)
router.register("customers", customers_api.CustomerViewSet, basename="customer")

urlpatterns = [
    path("me/", customers_api.MeView.as_view(), name="me"),
    *router.urls,
]
