"""markstation: controller for laser-marking workstations.

The library API lives in the subpackages (``markstation.job``, ``markstation.devices``,
``markstation.queue``); the CLI in ``markstation.cli`` is a thin layer over it.
"""

__version__ = "0.1.0"
