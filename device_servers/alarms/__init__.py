"""The alarm handler: the lab's alarm rules as a Tango device."""
