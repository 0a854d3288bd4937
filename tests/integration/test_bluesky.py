"""bluesky plans against the running demo lab, through `tangolab.experiment.tango_device`: the documents they emit."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import tango

pytest.importorskip("ophyd_async.tango")
bp = pytest.importorskip("bluesky.plans")
from bluesky import RunEngine

from tangolab.experiment import TangolabStage, tango_device
from tangolab.scripting import wait_until

CONNECT_TIMEOUT_S = 60.0  # a loaded 2-core machine


@pytest.fixture(scope="module")
def run_engine() -> RunEngine:
    return RunEngine({}, call_returns_result=True)


@pytest.fixture(scope="module")
def full_name(lab):
    def full(device: str) -> str:
        proxy = lab.proxy(device)
        wait_until(lambda: proxy.state() in (tango.DevState.ON, tango.DevState.RUNNING), 90, what=f"{device} ON")
        return f"tango://{lab.tango_host}/{device}"

    return full


@pytest.fixture(scope="module")
def cryo(run_engine, full_name):
    return tango_device(full_name("lab/cryocon/1"), timeout=CONNECT_TIMEOUT_S)


@pytest.fixture(scope="module")
def stage(run_engine, full_name):
    return tango_device(full_name("lab/stage/1"), timeout=CONNECT_TIMEOUT_S)


def run(run_engine: RunEngine, plan) -> Iterator[tuple[str, dict]]:
    """Run a plan; its documents in order, with the run's result."""
    documents: list[tuple[str, dict]] = []
    token = run_engine.subscribe(lambda name, doc: documents.append((name, doc)))
    try:
        run_engine(plan)
    finally:
        run_engine.unsubscribe(token)
    return documents


def of_kind(documents: list[tuple[str, dict]], kind: str) -> list[dict]:
    return [doc for name, doc in documents if name == kind]


def test_count_of_the_cryocon_reads_its_temperatures_with_units_and_hints(run_engine, cryo):
    documents = run(run_engine, bp.count([cryo], num=3))
    assert [name for name, _ in documents][:2] == ["start", "descriptor"]
    (start,) = of_kind(documents, "start")
    assert start["plan_name"] == "count" and start["detectors"] == ["cryocon_1"]
    (descriptor,) = of_kind(documents, "descriptor")
    keys = descriptor["data_keys"]
    assert keys["cryocon_1-temperatureA"]["units"] == "K"
    assert keys["cryocon_1-temperatureA"]["dtype"] == "number"
    assert keys["cryocon_1-heaterPower1"]["units"] == "%"
    assert keys["cryocon_1-setpoint1"]["units"] == "K"  # set-points are read, not hinted
    hinted = descriptor["hints"]["cryocon_1"]["fields"]
    assert {"cryocon_1-temperatureA", "cryocon_1-temperatureB", "cryocon_1-heaterPower1"} <= set(hinted)
    assert "cryocon_1-setpoint1" not in hinted
    assert "cryocon_1-loopType1" in descriptor["configuration"]["cryocon_1"]["data"]  # a mode is configuration
    events = of_kind(documents, "event")
    assert [e["seq_num"] for e in events] == [1, 2, 3]
    for event in events:
        assert 1.0 < event["data"]["cryocon_1-temperatureA"] < 400.0
        assert math.isnan(event["data"]["cryocon_1-temperatureD"])  # no sensor on D: INVALID, read as NaN
    (stop,) = of_kind(documents, "stop")
    assert stop["exit_status"] == "success" and stop["num_events"] == {"primary": 3}


def test_scan_over_the_setpoint_records_each_setpoint_with_the_temperatures(run_engine, cryo):
    documents = run(run_engine, bp.scan([cryo], cryo.setpoint1, 100, 120, 5))
    (start,) = of_kind(documents, "start")
    assert start["plan_name"] == "scan" and list(start["motors"]) == ["cryocon_1-setpoint1"]
    (descriptor,) = of_kind(documents, "descriptor")
    assert descriptor["data_keys"]["cryocon_1-setpoint1"]["units"] == "K"
    events = of_kind(documents, "event")
    assert [e["data"]["cryocon_1-setpoint1"] for e in events] == pytest.approx([100, 105, 110, 115, 120])
    assert all(1.0 < e["data"]["cryocon_1-temperatureA"] < 400.0 for e in events)
    (stop,) = of_kind(documents, "stop")
    assert stop["exit_status"] == "success" and stop["num_events"] == {"primary": 5}
    assert cryo.get_proxy() is not None
    assert tango.DeviceProxy(cryo.get_trl()).read_attribute("setpoint1").value == pytest.approx(120)


def test_scan_of_the_stage_moves_it_to_each_point_and_reads_where_it_settled(run_engine, stage):
    assert isinstance(stage, TangolabStage)
    documents = run(run_engine, bp.scan([], stage, 0.0, 2.0, 3))
    (start,) = of_kind(documents, "start")
    assert list(start["motors"]) == ["stage_1"]
    (descriptor,) = of_kind(documents, "descriptor")
    assert descriptor["data_keys"]["stage_1"]["units"] == "mm"
    assert descriptor["hints"]["stage_1"]["fields"] == ["stage_1"]
    assert "stage_1-Velocity" in descriptor["configuration"]["stage_1"]["data"]
    events = of_kind(documents, "event")
    assert [e["data"]["stage_1"] for e in events] == pytest.approx([0.0, 1.0, 2.0], abs=1e-3)
    assert all(list(e["data"]["stage_1-Limit_switches"]) == [False, False, False] for e in events)
    (stop,) = of_kind(documents, "stop")
    assert stop["exit_status"] == "success" and stop["num_events"] == {"primary": 3}
    assert tango.DeviceProxy(stage.get_trl()).state() == tango.DevState.ON  # each set waited for ON


def test_a_move_the_stage_refuses_fails_the_plan_saying_why(run_engine, stage):
    documents: list[tuple[str, dict]] = []
    token = run_engine.subscribe(lambda name, doc: documents.append((name, doc)))
    try:
        with pytest.raises(Exception) as failure:
            run_engine(bp.scan([], stage, 0.0, 1e6, 2))  # far beyond its travel
    finally:
        run_engine.unsubscribe(token)
    assert "above the maximum authorized" in repr(failure.value)  # Tango's: Position's max is the travel
    (stop,) = of_kind(documents, "stop")
    assert stop["exit_status"] == "fail"
    assert tango.DeviceProxy(stage.get_trl()).state() == tango.DevState.ON  # refused before it moved


def test_short_names_resolve_in_the_database_of_tango_host(run_engine, lab, monkeypatch, full_name):
    full_name("lab/tec/1")
    monkeypatch.setenv("TANGO_HOST", lab.tango_host)
    tec = tango_device("tec/1", timeout=CONNECT_TIMEOUT_S)
    assert tec.name == "tec_1"
    documents = run(run_engine, bp.count([tec]))
    (descriptor,) = of_kind(documents, "descriptor")
    assert descriptor["data_keys"]["tec_1-objectTemperature"]["units"] == "degC"
    assert "tec_1-objectTemperature" in descriptor["hints"]["tec_1"]["fields"]
    (stop,) = of_kind(documents, "stop")
    assert stop["exit_status"] == "success"
