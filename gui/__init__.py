"""Taurus panels and the main window of the lab."""
