"""GPIB bus behind a Prologix GPIB-ETHERNET controller: the driver (`driver.py`) and the `GpibBus` device."""
