"""The lab's Arduino environment box over the MIN protocol: driver and Tango device."""
