"""Rendering the public site: the mkdocs-material shell, the jinja2 pages that
share its look, charts, feeds, open data and the search index."""
