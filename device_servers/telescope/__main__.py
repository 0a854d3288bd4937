from .device import main

main()
