"""tangolab: lab instruments as Tango devices, with their simulators, archive, screens and scripts."""
