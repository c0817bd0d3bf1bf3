from __future__ import annotations

from django.db import models

from omnidesk.lib.tenancy import TenantOwned


class Team(TenantOwned):
    name = models.CharField(max_length=100)
    members = models.ManyToManyField("customers.Membership", blank=True, related_name="teams")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="team_unique_name")]

    def __str__(self) -> str:
        return self.name
