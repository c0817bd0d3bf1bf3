from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from analytics.management.commands._range import add_range_arguments, tenant_and_range
from analytics.rollups import rollups_check


class Command(BaseCommand):
    help = ("Compare a tenant's analytics rollups with a recomputation from the events; "
            "exits 1 and lists the differing rows when they disagree.")

    def add_arguments(self, parser):
        add_range_arguments(parser)

    def handle(self, *args, **options):
        tenant, start, end = tenant_and_range(options)
        mismatches = rollups_check(tenant=tenant, start=start, end=end)
        if not mismatches:
            self.stdout.write(f"{tenant.slug}: rollups of {start}..{end} match the events")
            return
        for mismatch in mismatches:
            self.stdout.write(str(mismatch))
        self.stderr.write(
            f"{tenant.slug}: {len(mismatches)} rollup rows of {start}..{end} differ from the events "
            f"(fix with: manage.py analytics_rollups_rebuild --tenant {tenant.slug} --start {start} --end {end})"
        )
        sys.exit(1)
