"""Published versions of DMP records and their DOIs (docs/architecture.md, "Published
versions and DOIs")."""
