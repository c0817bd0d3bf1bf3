"""Rollup rows per channel and team and per channel, team and agent (filtered and scoped reports read far fewer
rows than the full level), and hourly arrivals at every level (filtered heatmaps without reading events).
Existing rollups are rebuilt from the events so the new levels are there from the start; a few days per
transaction (non-atomic migration), so a large history does not hold one huge transaction."""

from django.db import migrations, models
from django.db.models import Max, Min


def rebuild_rollups(apps, schema_editor):
    from analytics.rollups import rollups_rebuild_in_chunks  # the current definition of the rows: that is the point

    Tenant = apps.get_model("customers", "Tenant")
    Rollup = apps.get_model("analytics", "AnalyticsRollup")
    for tenant in Tenant.objects.order_by("pk"):
        days = Rollup.objects.filter(tenant_id=tenant.pk).aggregate(first=Min("day"), last=Max("day"))
        if days["first"] is not None:
            rollups_rebuild_in_chunks(tenant=tenant, start=days["first"], end=days["last"])


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('analytics', '0008_rollup_emptied_index'),
        ('customers', '0005_web_chat_visitors'),
    ]

    operations = [
        migrations.AlterField(
            model_name='analyticsrollup',
            name='level',
            field=models.CharField(choices=[('full', 'Every dimension'), ('agent', 'Per channel, team and agent'), ('team', 'Per channel and team'), ('channel', 'Per channel only')], max_length=8),
        ),
        migrations.AddIndex(
            model_name='analyticsrollup',
            index=models.Index(fields=['tenant', 'level', 'agent_id', 'hour', 'day'], name='analytics_rollup_agent'),
        ),
        migrations.RunPython(rebuild_rollups, migrations.RunPython.noop),
    ]
