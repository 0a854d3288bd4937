"""Alarms: rules as text, the engine that runs them, and the figures of an alarm review.

Pure Python, shared by the AlarmHandler device (`device_servers/alarms`), `tangolab alarms` and
the GUI's Alarms panel.
"""
