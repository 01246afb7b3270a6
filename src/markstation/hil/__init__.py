"""Hardware-in-the-loop support for the ``hil_tests`` pytest plugin and ``markstation hil``.

- :mod:`~markstation.hil.report` — the JSON report and its Markdown summary;
- :mod:`~markstation.hil.jobs` — the checks' test jobs (squares, grids, held-off jobs);
- :mod:`~markstation.hil.guard` — :class:`~markstation.hil.guard.GuardedDriver`, which refuses
  emission on real hardware unless ``--allow-emission`` was given.
"""
