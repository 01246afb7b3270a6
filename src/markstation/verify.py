"""The safety gate: what may go to a laser is a job whose every 2D code reads back exactly.

:func:`build_verified_job` builds the job (:func:`markstation.job.layout.build_job`, which checks
the code, fonts, limits and safe areas) and then decodes every 2D code from its rendered burn
(:func:`markstation.preview.verify.verify_codes`). It lives here, above both packages, so that
``job`` never imports ``preview``: the gate is one named place, and every path to a device
(``mark``, ``batch run``, the demo, the library facade) goes through it.
"""

from __future__ import annotations

from markstation.job.ir import Job
from markstation.job.layout import build_job
from markstation.preview.verify import verify_codes
from markstation.profiles import LayoutProfile, MachineProfile, MaterialProfile


def build_verified_job(
    code: str,
    *,
    layout: LayoutProfile,
    material: MaterialProfile,
    machine: MachineProfile,
) -> Job:
    """:func:`~markstation.job.layout.build_job`, then every 2D code decoded back from the burn.

    A code that does not read back exactly (:class:`~markstation.errors.VerifyError`) is refused
    before a byte is sent. Previews use ``build_job`` and verify on request.
    """
    job = build_job(code, layout=layout, material=material, machine=machine)
    verify_codes(job, machine)
    return job
