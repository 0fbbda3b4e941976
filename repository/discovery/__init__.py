"""Being found: landing pages and the export registry (``public/``), OAI-PMH (``oai/``) and
search, the sitemap and robots.txt (``search/``)."""
