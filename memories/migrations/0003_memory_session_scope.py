from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("memories", "0002_memory_source_session"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='memory',
            name='memory_name_agent_user_uniq',
        ),
        migrations.RemoveConstraint(
            model_name='memory',
            name='memory_name_agent_uniq',
        ),
        migrations.RemoveConstraint(
            model_name='memory',
            name='memory_name_user_uniq',
        ),
        migrations.RemoveConstraint(
            model_name='memory',
            name='memory_name_global_uniq',
        ),
        migrations.AddConstraint(
            model_name='memory',
            constraint=models.UniqueConstraint(condition=models.Q(('agent__isnull', False), ('session__isnull', True), ('user__isnull', False)), fields=('agent', 'user', 'name'), name='memory_name_agent_user_uniq'),
        ),
        migrations.AddConstraint(
            model_name='memory',
            constraint=models.UniqueConstraint(condition=models.Q(('agent__isnull', False), ('session__isnull', True), ('user__isnull', True)), fields=('agent', 'name'), name='memory_name_agent_uniq'),
        ),
        migrations.AddConstraint(
            model_name='memory',
            constraint=models.UniqueConstraint(condition=models.Q(('agent__isnull', True), ('session__isnull', True), ('user__isnull', False)), fields=('user', 'name'), name='memory_name_user_uniq'),
        ),
        migrations.AddConstraint(
            model_name='memory',
            constraint=models.UniqueConstraint(condition=models.Q(('agent__isnull', True), ('session__isnull', True), ('user__isnull', True)), fields=('name',), name='memory_name_global_uniq'),
        ),
        migrations.AddConstraint(
            model_name='memory',
            constraint=models.UniqueConstraint(condition=models.Q(('session__isnull', False)), fields=('session', 'name'), name='memory_name_session_uniq'),
        ),
        migrations.AddConstraint(
            model_name='memory',
            constraint=models.CheckConstraint(condition=models.Q(('session__isnull', True), models.Q(('agent__isnull', True), ('source_session__isnull', True), ('user__isnull', True)), _connector='OR'), name='memory_session_scope_alone'),
        ),
    ]
