"""Keeping the bytes: uploads into the object store, checksums and fixity (the fixity core,
``fixity.py``), quarantine, duplicates, crash recovery (housekeeping, reconciliation),
technical metadata, and handing that work to the Celery workers (``queue.py``)."""
