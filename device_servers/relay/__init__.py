"""The relay: variables any client creates by writing to a name, kept across restarts in the Tango database."""
