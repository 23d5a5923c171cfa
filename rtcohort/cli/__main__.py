"""Run the ``rtcohort`` command as ``python -m rtcohort.cli``."""

from rtcohort.cli import main

if __name__ == "__main__":  # worker processes (spawn) import this module too
    main()
