"""Sphinx configuration for ts_calibscripts."""

project = "ts_calibscripts"
author = "Rubin Observatory"
copyright = "2026, Rubin Observatory"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.intersphinx"]
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
exclude_patterns = ["_build"]
html_theme = "alabaster"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
autodoc_typehints = "description"
nitpicky = False
