"""``chainrule serve``: a local web page for derivations and checks, and a JSON API.

:func:`chainrule.web.app.create_app` builds the Starlette application; the engine runs in the
worker processes of :mod:`chainrule.web.worker` under a time budget (the tasks they run are in
:mod:`chainrule.web.tasks`). Needs the ``web`` extra (``pip install 'chainrule[web]'``):
Starlette and uvicorn are imported by ``chainrule serve`` only.
"""
