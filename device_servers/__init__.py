"""Tango device servers of tangolab: one package per hardware unit or service."""

from tangolab.telemetry import skip_telemetry_patching

skip_telemetry_patching()  # before any server imports tango
