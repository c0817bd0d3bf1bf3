from __future__ import annotations

from django.core.management.base import BaseCommand

from analytics.management.commands._range import add_range_arguments, tenant_and_range
from analytics.rollups import rollups_rebuild_in_chunks


class Command(BaseCommand):
    help = "Recompute a tenant's analytics rollups for a range of its local days from the analytics events."

    def add_arguments(self, parser):
        add_range_arguments(parser)

    def handle(self, *args, **options):
        tenant, start, end = tenant_and_range(options)
        def progress(first, last, rows) -> None:
            self.stderr.write(f"{tenant.slug}: {first}..{last}, {rows} rollup rows")

        # Ten days per transaction: a long range never holds one huge transaction (or its locks) open.
        rows = rollups_rebuild_in_chunks(tenant=tenant, start=start, end=end, progress=progress)
        self.stdout.write(f"{tenant.slug}: rebuilt {start}..{end}, {rows} rollup rows")
