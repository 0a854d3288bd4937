"""`python -m device_servers.relay INSTANCE`, until the `Relay` console script is installed."""

import sys

from .device import main

sys.argv[0] = "Relay"  # Tango takes the server's name from argv[0], which `-m` makes the path of this file
main()
