"""Run the ``rtcohort`` command as ``python -m rtcohort.cli``."""

from rtcohort.cli import main

main()
