"""OAI-PMH 2.0 data provider at ``/oai`` (formats ``oai_dc`` and ``jpcoar_2.0``).

Harvesters see exactly ``records_visible_to(AnonymousUser())`` — records whose metadata is
open — and files only through ``visible_to(AnonymousUser(), Action.DOWNLOAD)``.

Deleted records: a record with ``withdrawn_at`` set is reported with
``<header status="deleted">`` for as long as its metadata stays open
(``deletedRecord=persistent``). A record whose metadata is closed later is no longer in the
harvestable set at all and simply disappears from responses: harvesters that keep copies
are not told to delete it. Withdraw a record (rather than closing its metadata) to make
harvesters drop it.
"""
