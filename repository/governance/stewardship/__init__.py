"""Pages of the people who look after a project's data: access requests and grants, object
deletion, and the audit trail. Thin views over :mod:`repository.governance.grants`,
:mod:`repository.governance.deletion` and :mod:`repository.governance.audit`."""
