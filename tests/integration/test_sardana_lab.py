"""A Sardana Pool drives the demo lab's stage through tangolab's motor controller: real database,
real APT simulator, ThorlabsStage and Pool processes (the stage's entries of db_config/lab.json,
plus a Pool whose PoolPath is tangolab's controllers), on free ports.

A move of the Sardana motor moves lab/stage/1 and ends ON at the device's position (not at the
target to the last digit), Stop on the motor stops the stage mid-move, a target beyond the travel
is refused in the device's words, and Velocity and Acceleration are the device's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import tango

from tangolab.lab_config import LabConfig
from tangolab.scripting import wait_until
from tests.conftest import run_lab

pytest.importorskip("sardana", reason="Sardana is not installed (pip install tangolab[sardana])")

from tangolab.sardana import POOL_PATH

STAGE, POOL, MOTOR = "lab/stage/1", "lab/pool/1", "motor/stages/1"
ON, MOVING = tango.DevState.ON, tango.DevState.MOVING


def stage_and_pool() -> LabConfig:
    """The demo lab's stage (simulator, server, device as the lab file has them) and a Pool."""
    demo = LabConfig.load().data
    return LabConfig({
        "servers": {
            "ThorlabsStage": demo["servers"]["ThorlabsStage"],
            "Pool": {"lab": {"Pool": {POOL: {"properties": {"PoolPath": [POOL_PATH]}}}}},
        },
        "tangolab": {
            "simulators": {"apt": demo["tangolab"]["simulators"]["apt"]},
            "commands": {"Pool": [str(Path(sys.executable).parent / "Pool")]},
            "levels": {"Pool/lab": 3},
        },
    }).with_free_ports()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with run_lab(stage_and_pool(), tmp_path_factory.mktemp("sardana")) as lab:
        yield lab


@pytest.fixture(scope="module")
def stage(lab):
    proxy = lab.proxy(STAGE)
    wait_until(lambda: proxy.state() == ON, 60, what="the stage ON")
    return proxy


@pytest.fixture(scope="module")
def motor(lab, stage):
    pool = lab.proxy(POOL)
    pool.set_timeout_millis(30_000)
    pool.command_inout("CreateController", ["Motor", "tangolab_motor_ctrl.py", "TangolabMotorController",
                                            "stages", "Devices", STAGE])
    pool.command_inout("CreateElement", ["Motor", "stages", "1", "stage_1"])
    proxy = lab.proxy(MOTOR)
    wait_until(lambda: proxy.state() == ON, 60, what="the Sardana motor ON")
    proxy.write_attribute("Velocity", 5.0)  # mm/s: the stage's top speed
    return proxy


def test_velocity_and_acceleration_are_the_devices(motor, stage):
    assert stage.read_attribute("Velocity").value == pytest.approx(5.0, abs=1e-3)
    motor.write_attribute("Acceleration", 2.0)  # Sardana's: seconds to reach the velocity
    assert stage.read_attribute("Acceleration").value == pytest.approx(2.5, abs=0.01)  # mm/s², as the cube keeps it
    assert motor.read_attribute("Acceleration").value == pytest.approx(2.0, abs=0.01)
    with pytest.raises(tango.DevFailed) as refused:
        motor.write_attribute("Acceleration", 0.5)  # 10 mm/s², beyond the stage's
    assert "out of range: allowed" in " ".join(error.desc for error in refused.value.args)
    assert stage.read_attribute("Acceleration").value == pytest.approx(2.5, abs=0.01)


def test_a_move_of_the_motor_moves_the_stage_and_ends_on_at_the_devices_position(motor, stage):
    motor.write_attribute("Position", 7.12345)  # a step of the encoder is 1/34304 mm: it ends near, not on
    assert stage.state() == MOVING
    wait_until(lambda: motor.state() == ON, 60, what="the motor ON again")
    assert stage.state() == ON and stage.read_attribute("outcome").value == "done"
    position = stage.read_attribute("Position").value
    assert position == pytest.approx(7.12345, abs=1e-4)
    assert motor.read_attribute("Position").value == pytest.approx(position, abs=1e-9)
    assert "lab/stage/1: Stopped at" in motor.status()


def test_stop_on_the_motor_stops_the_stage_mid_move(motor, stage):
    start = stage.read_attribute("Position").value
    motor.write_attribute("Position", 45.0)
    wait_until(lambda: stage.read_attribute("Position").value > start + 2.0, 60, what="the stage under way")
    motor.command_inout("Stop")
    wait_until(lambda: motor.state() == ON, 60, what="the motor stopped")
    assert stage.state() == ON and stage.read_attribute("outcome").value == "stopped"
    stopped = stage.read_attribute("Position").value
    assert start + 2.0 < stopped < 44.0
    assert motor.read_attribute("Position").value == pytest.approx(stopped, abs=1e-9)


def test_a_target_beyond_the_travel_is_refused_in_the_devices_words(motor, stage):
    before = stage.read_attribute("Position").value
    with pytest.raises(tango.DevFailed) as refused:
        motor.write_attribute("Position", 60.0)
    words = " ".join(error.desc for error in refused.value.args)
    assert "lab/stage/1 refused Position = 60" in words
    assert "0 to 50 mm" in words
    assert motor.state() == ON and stage.state() == ON
    assert stage.read_attribute("Position").value == before
