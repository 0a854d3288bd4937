"""One device class for several models of an instrument, picked by the device's `Model` property
(a Keithley 6485 or 487, a Pfeiffer TPG 361 or an MKS PDR900, each Aim-TTi supply's ranges).

    DRIVERS = Models({"6485": Keithley6485, "487": Keithley487})

    class Picoammeter(HardwareDevice):
        Model = DRIVERS.property("6485", "6485 (SCPI) or 487 (DDC, with voltage source)")

        def create_driver(self, link):
            return DRIVERS.pick(self.Model)(link)

A name is matched whatever its case and spaces (`tpg 361` is `TPG361`); an unknown one is a
ValueError that lists the models, and the device does not start.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

from tango import DevFailed
from tango.server import Device, device_property

T = TypeVar("T")


class Models(Mapping[str, T], Generic[T]):
    """What each model name stands for (a driver class, a table of ranges)."""

    def __init__(self, models: Mapping[str, T]) -> None:
        self._models = {_key(name): value for name, value in models.items()}
        self._names = list(models)

    def __getitem__(self, name: str) -> T:
        return self._models[_key(name)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def pick(self, name: str) -> T:
        """The model `name` stands for; ValueError naming the models there are."""
        try:
            return self[name]
        except KeyError:
            raise ValueError(f"Model {name!r} is not one of {', '.join(self._names)}") from None

    def property(self, default: str, doc: str = "The instrument's model") -> device_property:
        """The device's `Model` property, its documentation listing the models."""
        return device_property(dtype=str, default_value=default, doc=f"{doc} (one of {', '.join(self._names)})")


def add_model_attributes(device: Device, attributes: Mapping[str, dict[str, Any]]) -> None:
    """Add the attributes only some models have (`polled` keyword arguments by name), once: an
    Init keeps those added before."""
    for name, kwargs in attributes.items():
        try:
            device.get_device_attr().get_attr_by_name(name)
        except DevFailed:
            device.add_polled_attribute(name, **kwargs)


def _key(name: str) -> str:
    return name.strip().upper().replace(" ", "")
