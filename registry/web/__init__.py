"""The web catalog: server-rendered pages over the same services as the JSON API.

`core.py` is its one coupling to the registry's core; `views.py` holds the HTTP functions
(the blueprint `bp`, registered by function_app.py).
"""
