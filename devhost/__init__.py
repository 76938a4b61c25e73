"""Local stand-in for the Azure Functions host (`func start`), for development only.

Run with ``python -m devhost``; see ``devhost/__main__.py`` for options.
"""
