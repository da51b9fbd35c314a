"""The "Console users" group: both of the console's permissions, so that giving someone the
console is one click in the admin (``docs/operations.md`` shows how to give only reading)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Console users"
PERMISSIONS = ("send_request", "view_exchange")


def create_group(apps, schema_editor):
    # Permissions are made after all migrations have run; this one needs them now. A
    # migration's app config has no models module, which create_permissions takes for "none".
    app_config = apps.get_app_config("api_client")
    app_config.models_module = True
    create_permissions(app_config, verbosity=0, apps=apps)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="api_client", codename__in=PERMISSIONS)
    )


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("api_client", "0004_exchange_actor_and_send_permission"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
