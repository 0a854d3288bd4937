"""This host's health as a Tango device (`HostMonitor`): CPU, load, memory, disk, network, temperatures."""
