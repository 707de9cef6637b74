"""Run the CLI as ``python -m kvmigrate``."""

from kvmigrate.cli import main

main()
