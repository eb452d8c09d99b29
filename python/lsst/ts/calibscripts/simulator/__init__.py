"""The simulated observatory: CSCs and the physical camera model.

Import the modules directly; this package initialiser stays empty so that
the camera model can be used without the SAL kernel.
"""
