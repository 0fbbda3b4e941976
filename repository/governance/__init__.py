"""Deciding who sees what: tier changes, access requests and grants (one request-and-decision
workflow, ``decisions.py``), deletion, the audit trail's reads, notices by e-mail, and the
curators' and stewards' pages."""
