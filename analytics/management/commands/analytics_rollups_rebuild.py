from __future__ import annotations

from django.core.management.base import BaseCommand

from analytics.management.commands._range import add_range_arguments, tenant_and_range
from analytics.rollups import rollups_rebuild


class Command(BaseCommand):
    help = "Recompute a tenant's analytics rollups for a range of its local days from the analytics events."

    def add_arguments(self, parser):
        add_range_arguments(parser)

    def handle(self, *args, **options):
        tenant, start, end = tenant_and_range(options)
        rows = rollups_rebuild(tenant=tenant, start=start, end=end)
        self.stdout.write(f"{tenant.slug}: rebuilt {start}..{end}, {rows} rollup rows")
