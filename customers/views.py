from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from conversations.selectors import customer_timeline
from customers.middleware import SESSION_KEY
from customers.models import Customer
from customers.selectors import customer_list, customer_possible_duplicates, memberships_of_user
from omnidesk.lib.access import member_required


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
    try:
        customer = customer_list(tenant=request.tenant).prefetch_related("identities").get(pk=customer_id)
    except Customer.DoesNotExist as exc:
        raise Http404("No such customer.") from exc
    return render(
        request,
        "customers/customer_detail.html",
        {
            "customer": customer,
            "timeline": customer_timeline(tenant=request.tenant, customer=customer),
            "conversations": customer.conversations.order_by("-updated_at"),
            "duplicates": customer_possible_duplicates(tenant=request.tenant, customer=customer),
        },
    )
