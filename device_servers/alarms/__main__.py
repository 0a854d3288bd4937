"""`python -m device_servers.alarms INSTANCE`, until the `AlarmHandler` console script is installed."""

import sys

from .device import main

sys.argv[0] = "AlarmHandler"  # Tango takes the server's name from argv[0]
main()
