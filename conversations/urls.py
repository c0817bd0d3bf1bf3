from __future__ import annotations

from django.urls import path

from conversations import views
from customers import views as customer_views

app_name = "workspace"

urlpatterns = [
    path("", views.workspace_home, name="home"),
    path("conversations/<int:number>/", views.conversation_detail, name="conversation"),
    path("conversations/<int:number>/status/", views.conversation_status, name="conversation_status"),
    path("conversations/<int:number>/reply/", views.conversation_reply, name="conversation_reply"),
    path("conversations/<int:number>/assign/", views.conversation_assign_view, name="conversation_assign"),
    path("conversations/<int:number>/details/", views.conversation_details, name="conversation_details"),
    path("conversations/<int:number>/notes/", views.conversation_add_note, name="conversation_note"),
    path("customers/<int:customer_id>/", customer_views.customer_detail, name="customer"),
    path("customers/<int:customer_id>/identities/", customer_views.customer_identity_add, name="customer_identity_add"),
    path("customers/<int:customer_id>/merge/", customer_views.customer_merge_view, name="customer_merge"),
]
