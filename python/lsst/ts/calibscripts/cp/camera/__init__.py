"""The cameras' description: detector geometry and nominal properties.

`geometry` holds the amplifier layout of a detector (data, prescan,
overscan regions; full-size and reduced ITL geometries); `description`
the static description of LATISS and LSSTComCam (detector names, nominal
gains and read noise, filters). Pure Python, shared by the algorithms, the
Butler side and the simulator.
"""
