"""Benchmarks of kvmigrate against the emulator in its own process: ``make bench`` (see benchmarks/README.md)."""
