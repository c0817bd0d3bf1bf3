from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from conversations.selectors import customer_timeline, member_names
from customers.forms import IdentityAddForm, MergeForm
from customers.middleware import SESSION_KEY
from customers.models import ApiToken, Customer, IdentityKind
from customers.selectors import customer_list, customer_possible_duplicates, memberships_of_user
from customers.services import api_token_create, api_token_revoke, customer_add_identity, customer_merge
from omnidesk.lib.access import member_required


def _customer_or_404(request, customer_id: int) -> Customer:
    try:
        return customer_list(tenant=request.tenant).get(pk=customer_id)
    except Customer.DoesNotExist as exc:
        raise Http404("No such customer.") from exc


@login_required
@require_POST
def tenant_switch(request):
    slug = request.POST.get("tenant", "")
    membership = memberships_of_user(user=request.user).filter(tenant__slug=slug).first()
    if membership is None:
        return HttpResponseBadRequest("You have no seat in that tenant.")
    request.session[SESSION_KEY] = membership.tenant_id
    messages.info(request, f"Now working in {membership.tenant.name}.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "workspace:home"
    return redirect(target)


@member_required()
def customer_detail(request, customer_id: int):
    customer = _customer_or_404(request, customer_id)
    return render(
        request,
        "customers/customer_detail.html",
        {
            "customer": customer,
            "timeline": customer_timeline(tenant=request.tenant, customer=customer),
            "conversations": customer.conversations.order_by("-updated_at"),
            "duplicates": customer_possible_duplicates(tenant=request.tenant, customer=customer),
            "identity_kinds": IdentityKind.choices,
            "people": member_names(tenant=request.tenant),
        },
    )


@member_required()
@require_POST
def customer_identity_add(request, customer_id: int):
    customer = _customer_or_404(request, customer_id)
    form = IdentityAddForm(request.POST)
    if form.is_valid():
        try:
            identity = customer_add_identity(
                tenant=request.tenant, customer=customer, kind=form.cleaned_data["kind"], value=form.cleaned_data["value"]
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Added {identity.get_kind_display()} {identity.value}.")
    else:
        messages.error(request, "Choose a kind and write an address.")
    return redirect("workspace:customer", customer_id=customer.pk)


@member_required()
@require_POST
def customer_merge_view(request, customer_id: int):
    """Merge a duplicate into this customer or this customer into it, as the agent chose."""
    customer = _customer_or_404(request, customer_id)
    form = MergeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose the duplicate and which record survives.")
        return redirect("workspace:customer", customer_id=customer.pk)
    other = _customer_or_404(request, form.cleaned_data["other"])
    survivor, merged = (customer, other) if form.cleaned_data["survivor"] == "this" else (other, customer)
    try:
        survivor = customer_merge(tenant=request.tenant, survivor=survivor, merged=merged, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("workspace:customer", customer_id=customer.pk)
    messages.success(request, f"Merged {merged} into {survivor}.")
    # From a conversation page the agent goes back to it (its conversation now belongs to the survivor).
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("workspace:customer", customer_id=survivor.pk)


def _own_tokens(request):
    return ApiToken.objects.for_tenant(request.tenant).filter(membership=request.membership)


@member_required()
def profile(request):
    """The member's own API tokens in the current tenant: list, create (the key is shown once), revoke."""
    new_key, error = "", ""
    if request.method == "POST":
        try:
            _, new_key = api_token_create(membership=request.membership, name=request.POST.get("name", ""), actor=request.user)
        except ValidationError as exc:
            error = " ".join(exc.messages)
    response = render(request, "customers/profile.html", {
        "tokens": _own_tokens(request), "new_key": new_key, "error": error,
    }, status=400 if error else 200)
    if new_key:
        response["Cache-Control"] = "no-store"
    return response


@member_required()
@require_POST
def profile_token_revoke(request, token_id: int):
    token = get_object_or_404(_own_tokens(request), pk=token_id)
    api_token_revoke(tenant=request.tenant, token=token, actor=request.user)
    messages.success(request, f"Revoked the token {token}.")
    return redirect("workspace:profile")
