from __future__ import annotations


def test_admin_get(client, tenant, tenant_admin):
    client.force_login(tenant_admin)
    r = client.get("/admin/customers/customer/add/")
    print([f.formset.prefix for f in r.context["inline_admin_formsets"]])
    import re
    print(sorted(set(re.findall(r'name="([^"]+)"', r.content.decode()))))
