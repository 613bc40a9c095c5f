"""``python -m faceattr.cli``: the ``faceattr`` command, for launchers such as torchrun."""

from faceattr.cli import main

main()
