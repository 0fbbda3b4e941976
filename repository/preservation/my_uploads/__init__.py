"""A researcher's own files: "My uploads" (``/uploads/``) and the duplicate notice's
"keep both" answer on the object page."""
