"""The safety gate: what may go to a laser is a job whose every 2D code reads back exactly.

:func:`build_verified_job` builds the job (:func:`markstation.job.layout.build_job`, which checks
the code, fonts, limits and safe areas) and then decodes every 2D code from its rendered burn
(:func:`markstation.preview.verify.verify_codes`). It lives here, above both packages, so that
``job`` never imports ``preview``: the gate is one named place, and every path to a device
(``mark``, ``batch run``, the demo, the library facade) goes through it.
"""

from __future__ import annotations

from markstation.errors import VerifyError
from markstation.i18n import _
from markstation.job.ir import Job
from markstation.job.layout import build_job
from markstation.preview.scene import symbology_name
from markstation.preview.verify import CodeCheck, verify_codes
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
    before a byte is sent, and so is one whose verification grade is below the layout's
    ``min_grade``. Previews use ``build_job`` and verify on request.
    """
    job = build_job(code, layout=layout, material=material, machine=machine)
    verify_job(job, layout=layout, machine=machine)
    return job


def verify_job(job: Job, *, layout: LayoutProfile, machine: MachineProfile) -> list[CodeCheck]:
    """The gate's second half on a built job: every 2D code decoded back from the burn
    (:class:`~markstation.errors.VerifyError` if one does not read back exactly) and graded no
    lower than the layout's ``min_grade``; returns the checks (decode and grade), for a preview
    that shows them."""
    checks = verify_codes(job, machine)
    if layout.min_grade:
        from markstation.preview.grade import grade_value

        floor = grade_value(layout.min_grade)
        for check in checks:
            if check.grade is not None and check.grade.score < floor - 1e-9:
                raise VerifyError(
                    _(
                        "layout '{layout}': {name} grades {grade}, below the minimum grade "
                        "{minimum} (min_grade; weakest: {weakest})"
                    ).format(
                        layout=layout.name,
                        name=symbology_name(check.symbology),
                        grade=check.grade.short(),
                        minimum=layout.min_grade,
                        weakest=_parameter_name(check.grade.weakest),
                    )
                )
    return checks


def _parameter_name(key: str) -> str:
    """A grade parameter's name in the technician's language."""
    names = {
        "decode": _("decode"),
        "cell contrast": _("cell contrast"),
        "minimum reflectance": _("minimum reflectance"),
        "cell modulation": _("cell modulation"),
        "fixed pattern damage": _("fixed pattern damage"),
        "grid non-uniformity": _("grid non-uniformity"),
    }
    return names.get(key, key)
