"""``docmill serve``: a live dashboard and read-only REST API over a journal.

``docmill.serve.app.create_app(target)`` builds the Starlette application (page, ``/api/…``,
``/metrics``) behind the guard of ``security.py``; ``docmill.serve.app.serve`` runs it with uvicorn.
"""
