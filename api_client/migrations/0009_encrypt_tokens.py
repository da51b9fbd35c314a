"""Encrypt the stored access and refresh tokens (api_client.encryption).

The data step runs while the fields are still plain text fields, so it reads the plaintext and
writes the ciphertext as they are; then the fields become encrypted ones. That changes the
model state only: the column stays ``text``, so no table is rebuilt. Reversed, the fields are
plain again first, then the values are decrypted; a value no key decrypts is cleared (no
token: the next call obtains one).
"""

from django.db import migrations

import api_client.encryption
from api_client import encryption

SECRETS = ("access_token", "refresh_token")


def encrypt_tokens(apps, schema_editor):
    Token = apps.get_model("api_client", "Token")
    for row in Token.objects.using(schema_editor.connection.alias).only("pk", *SECRETS):
        values = {name: getattr(row, name) for name in SECRETS if getattr(row, name)}
        if values:
            Token.objects.using(schema_editor.connection.alias).filter(pk=row.pk).update(
                **{name: encryption.encrypt(value) for name, value in values.items()}
            )


def decrypt_tokens(apps, schema_editor):
    Token = apps.get_model("api_client", "Token")
    for row in Token.objects.using(schema_editor.connection.alias).only("pk", *SECRETS):
        values = {}
        for name in SECRETS:
            if stored := getattr(row, name):
                try:
                    values[name] = encryption.decrypt(stored)
                except encryption.DecryptionError:
                    values[name] = ""
        if values:
            Token.objects.using(schema_editor.connection.alias).filter(pk=row.pk).update(**values)


class Migration(migrations.Migration):
    dependencies = [
        ("api_client", "0008_unknown_index"),
    ]

    operations = [
        migrations.RunPython(encrypt_tokens, decrypt_tokens),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="token",
                    name="access_token",
                    field=api_client.encryption.EncryptedTextField(blank=True),
                ),
                migrations.AlterField(
                    model_name="token",
                    name="refresh_token",
                    field=api_client.encryption.EncryptedTextField(blank=True),
                ),
            ],
        ),
    ]
