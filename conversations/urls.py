from __future__ import annotations

from django.urls import include, path

from conversations import views
from customers import views as customer_views

app_name = "workspace"

urlpatterns = [
    path("", views.workspace_home, name="home"),
    path("filters/", views.saved_filter_create, name="saved_filter_create"),
    path("filters/<int:saved_filter_id>/delete/", views.saved_filter_delete_view, name="saved_filter_delete"),
    path("conversations/<int:number>/", views.conversation_detail, name="conversation"),
    path("conversations/<int:number>/status/", views.conversation_status, name="conversation_status"),
    path("conversations/<int:number>/reply/", views.conversation_reply, name="conversation_reply"),
    path("conversations/<int:number>/assign/", views.conversation_assign_view, name="conversation_assign"),
    path("conversations/<int:number>/details/", views.conversation_details, name="conversation_details"),
    path("conversations/<int:number>/notes/", views.conversation_add_note, name="conversation_note"),
    path(
        "conversations/<int:number>/scheduled/<int:entry_id>/cancel/", views.conversation_cancel_scheduled,
        name="conversation_cancel_scheduled",
    ),
    path("conversations/<int:number>/merge/", views.conversation_merge_view, name="conversation_merge"),
    path("attachments/<int:attachment_id>/", views.attachment_download, name="attachment"),
    # Public: a signed, expiring link (Twilio's MediaUrl, the API channel's attachment URLs).
    path("files/<str:token>/<str:filename>", views.attachment_public, name="attachment_public"),
    path("customers/<int:customer_id>/", customer_views.customer_detail, name="customer"),
    path("profile/", customer_views.profile, name="profile"),
    path("profile/tokens/<int:token_id>/revoke/", customer_views.profile_token_revoke, name="profile_token_revoke"),
    path("customers/<int:customer_id>/identities/", customer_views.customer_identity_add, name="customer_identity_add"),
    path("customers/<int:customer_id>/merge/", customer_views.customer_merge_view, name="customer_merge"),
    # Click-to-call, the SMS follow-up after a call and softphone tokens (workspace:voice:…).
    path("voice/", include("channels_app.adapters.twilio_voice.agent_urls")),
]
