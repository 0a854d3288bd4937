"""Function generators on one `FunctionGenerator` vocabulary: the HP 33120A (GPIB) and the
Tektronix AFG31000 (LAN)."""
