"""The one abort guard: trigger from any thread, SIGINT on the main thread, the e-stop watcher."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from _queue_fakes import FakeDriver
from markstation.devices.abort import CTRL_C, ESTOP, AbortGuard
from markstation.devices.base import FanOut, Inputs, NullListener, RunResult
from markstation.errors import Aborted
from markstation.job.ir import Job, Layer, MarkParams, Polyline

pytestmark = pytest.mark.timeout(30)


def a_job() -> Job:
    return Job((Layer("l", MarkParams(500.0, 20.0, 30.0), (Polyline(((0, 0), (1, 0))),)),))


def test_trigger_from_another_thread_aborts_and_keeps_the_first_reason() -> None:
    driver = FakeDriver()
    with AbortGuard(driver, estop=False) as guard:
        threading.Thread(target=guard.trigger, args=("stop button",)).start()
        assert guard.wait(5.0)
        guard.trigger("second press")
    assert driver.aborts == 2 and driver.abort_requested  # every trigger asks the driver again
    assert guard.reason == "stop button" and guard.error is None


def test_sigint_is_caught_on_the_main_thread_and_the_handler_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    driver = FakeDriver()
    with AbortGuard(driver, estop=False) as guard:
        os.kill(os.getpid(), signal.SIGINT)
        assert guard.wait(5.0)
    assert guard.reason == CTRL_C and driver.aborts == 1  # exit waited for the abort call
    assert signal.getsignal(signal.SIGINT) is before


def test_estop_input_triggers() -> None:
    driver = FakeDriver()
    with AbortGuard(driver, poll_s=0.005) as guard:
        driver.estop = True
        assert guard.wait(5.0)
    assert guard.reason == ESTOP and driver.aborts >= 1


def test_a_broken_watcher_is_recorded_and_aborts() -> None:
    class Broken(FakeDriver):
        def _read_inputs(self) -> Inputs:
            raise RuntimeError("bug")

    driver = Broken()
    with AbortGuard(driver, poll_s=0.005) as guard:
        assert guard.wait(5.0)
    assert isinstance(guard.error, RuntimeError)
    assert guard.reason is not None and guard.reason.startswith("e-stop watcher failed")
    assert driver.aborts >= 1


def test_an_abort_before_run_starts_is_asked_again() -> None:
    # run() clears the driver's abort flag; the guard's listener sets it again before anything fires
    driver = FakeDriver()
    with AbortGuard(driver, estop=False) as guard:
        guard.trigger("early")
        time.sleep(0.05)
        with pytest.raises(Aborted):
            driver.run(a_job(), guard.listener())
    assert driver.burned[-1][1] is False  # the fake stopped instead of completing


def test_fan_out_calls_every_listener_in_order() -> None:
    calls: list[str] = []

    class Named(NullListener):
        def __init__(self, name: str) -> None:
            self.name = name

        def on_progress(self, fraction: float, elapsed_s: float) -> None:
            calls.append(f"{self.name}:{fraction:g}")

        def on_finished(self, result: RunResult) -> None:
            calls.append(f"{self.name}:done")

    both = FanOut(Named("a"), Named("b"))
    both.on_progress(0.5, 1.0)
    both.on_finished(RunResult(complete=True, elapsed_s=1.0))
    assert calls == ["a:0.5", "b:0.5", "a:done", "b:done"]


def test_poll_once_records_a_device_error_and_stops_watching() -> None:
    from markstation.errors import DeviceReset

    class Resetting(FakeDriver):
        def _read_inputs(self) -> Inputs:
            raise DeviceReset("the board reset itself")

    driver = Resetting()
    guard = AbortGuard(driver, estop=False, sigint=False)
    assert guard.poll_once() is False
    assert isinstance(guard.error, DeviceReset)
    assert guard.reason is None  # a device error is for the run to report, not an abort
