"""The marking station: ``markstation station``, a browser face over the same runner and store.

- :mod:`~markstation.station.adapter` — :class:`BrowserOperator`, the runner's
  :class:`~markstation.queue.operator.OperatorUI` for the browser (commands in, snapshots out);
- :mod:`~markstation.station.service` — :class:`Station`: the runner thread, the web side's store
  thread, job and preview cache, sessions;
- :mod:`~markstation.station.security` — sessions, CSRF, cookie flags, role checks;
- :mod:`~markstation.station.app` — the Starlette routes and Jinja2 screens;
- :mod:`~markstation.station.server` — uvicorn in the foreground (the command) or on a thread (tests).

Nothing here is imported by ``markstation --help``: the command imports this package when it runs,
and the web libraries (the ``markstation[station]`` extra) only then.
"""
