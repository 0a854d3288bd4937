"""tangolab's Sardana controllers (`pip install tangolab[sardana]`).

A Sardana Pool finds them through one line of its `PoolPath` property, this folder:

    python -c "import tangolab.sardana as s; print(s.POOL_PATH)"

then `TangolabMotorController` (file `tangolab_motor_ctrl.py`) drives any tangolab stage (any
device with Sardana's motor names: `Position`, `Velocity`, `Acceleration`, `Limit_switches`,
`Stop`, `Abort`) as a Sardana motor. Nothing here is imported by tangolab itself: the Pool loads
the controller files from this folder.
"""

from pathlib import Path

#: The folder a Pool's `PoolPath` names to find tangolab's controllers.
POOL_PATH = str(Path(__file__).resolve().parent)
