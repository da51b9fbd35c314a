"""``{% load exchange_admin %}``: the exchange admin's tags, which live beside its change list."""

from api_client.admin.changelist import register

__all__ = ["register"]
