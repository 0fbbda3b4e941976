"""Pages of the people who look after a project's data: access requests and grants, object
deletion, and the audit trail. Thin views over :mod:`repository.grants`,
:mod:`repository.deletion` and :mod:`repository.audit`."""
