"""Re-encrypt every stored secret under the newest key of ``POC_ENCRYPTION_KEY``.

One transaction: every row is rotated, or none. A secret no configured key decrypts cannot be
rotated; by default it is left as it is (it already reads as missing, and the next grant
replaces it) and the command exits 1, because the likelier cause is an old key missing from
the list, and the fix is to add it and run again. ``--clear-undecryptable`` empties such
secrets instead, when they are known to be lost.
"""

from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, models, transaction
from django.db.models import Value

from api_client import encryption
from api_client.management.base import check_database, plural
from api_client.models import Connection, Token

SECRETS = ("access_token", "refresh_token")


@dataclass(frozen=True, slots=True)
class Rotation:
    tokens: int  # rows with at least one secret re-encrypted
    secrets: int  # values re-encrypted
    undecryptable: int  # rows with a secret no key decrypts
    cleared: bool
    connections: int = 0  # connections whose client secret was re-encrypted
    lost_connections: tuple[str, ...] = ()  # whose client secret no key decrypts


def _rotate(
    model: type[models.Model], names: tuple[str, ...], *, clear: bool
) -> list[tuple[Any, int, bool]]:
    """Re-encrypt ``names`` of every row of ``model`` (in the caller's transaction): for each
    row, its key, how many values were re-encrypted, and whether one could not be."""
    annotations = {f"stored_{name}": encryption.stored(name) for name in names}
    key = "name" if model is Connection else "pk"
    rows = list(
        model.objects.select_for_update()
        .annotate(**annotations)
        .values_list("pk", key, *annotations)
        .order_by("pk")
    )
    done = []
    for pk, label, *values in rows:
        changes, unreadable = {}, False
        for name, value in zip(names, values, strict=True):
            if not value:
                continue
            try:
                changes[name] = encryption.rotate(value)
            except encryption.DecryptionError:
                unreadable = True
                if clear:
                    changes[name] = ""
        if changes:
            # Values typed as plain text, so the encrypted field does not encrypt again.
            model.objects.filter(pk=pk).update(
                **{n: Value(v, output_field=models.TextField()) for n, v in changes.items()}
            )
        done.append((label, sum(1 for value in changes.values() if value), unreadable))
    return done


def rotate_tokens(*, clear_undecryptable: bool = False) -> Rotation:
    """Re-encrypt the tokens' secrets and the connections' client secrets under the newest
    key, in one transaction. A client secret no key decrypts is never cleared: a token can be
    obtained anew, a credential cannot."""
    with transaction.atomic():
        tokens = _rotate(Token, SECRETS, clear=clear_undecryptable)
        secrets = _rotate(Connection, ("client_secret",), clear=False)
    return Rotation(
        tokens=sum(1 for _, count, _ in tokens if count),
        secrets=sum(count for _, count, _ in tokens) + sum(count for _, count, _ in secrets),
        undecryptable=sum(1 for _, _, lost in tokens if lost),
        cleared=clear_undecryptable,
        connections=sum(1 for _, count, _ in secrets if count),
        lost_connections=tuple(name for name, _, lost in secrets if lost),
    )


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored token and client secret under the newest key of "
        "POC_ENCRYPTION_KEY, in one transaction, and print how many."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--clear-undecryptable",
            action="store_true",
            help="Empty the secrets no configured key decrypts (they are obtained anew at the "
            "next call) instead of leaving them and exiting with status 1.",
        )

    def handle(self, *, clear_undecryptable: bool, **options: Any) -> None:
        check_database()
        try:
            rotation = rotate_tokens(clear_undecryptable=clear_undecryptable)
        except DatabaseError as exc:
            raise CommandError(
                f"Nothing was re-encrypted: the database failed ({' '.join(str(exc).split())})."
            ) from exc
        self.stdout.write(
            f"Done! Re-encrypted {plural(rotation.secrets, 'secret')} of "
            f"{plural(rotation.tokens, 'token')} and "
            f"{plural(rotation.connections, 'connection')} under the newest key of "
            f"{encryption.VARIABLE}."
        )
        if rotation.lost_connections:
            names = ", ".join(map(repr, rotation.lost_connections))
            raise CommandError(
                f"Could not decrypt the client secret of {names} with any key of "
                f"{encryption.VARIABLE}; left as stored. If an old key is missing, add it after "
                "the newest and run this again; otherwise set the secret again (the admin, or "
                "`manage.py add_connection NAME --update --client-secret-env VAR`)."
            )
        if not rotation.undecryptable:
            return
        which = plural(rotation.undecryptable, "token")
        if rotation.cleared:
            self.stdout.write(
                f"Cleared {which} that no key of {encryption.VARIABLE} decrypts; "
                "they are obtained anew at the next call."
            )
            return
        raise CommandError(
            f"Could not decrypt {which} with any key of {encryption.VARIABLE}; left as "
            "stored (they read as missing, and the next grant replaces them). If an old key "
            f"is missing, add it after the newest in {encryption.VARIABLE} and run this again; "
            "if they are lost, run this with --clear-undecryptable."
        )
