"""A GPS receiver's NMEA 0183 stream (as HiPERCAM's rack read it): protocol, driver, Tango device."""
