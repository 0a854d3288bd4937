"""tangolab: lab instruments as Tango devices, with their simulators, archive, screens and scripts."""

from .telemetry import skip_telemetry_patching

skip_telemetry_patching()  # before anything imports tango
