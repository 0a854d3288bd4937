"""The force spectrometer: the epz AD/DA board of a single-molecule pulling AFM."""
