"""Benchmarks, run as `python -m bench <name>`; `python -m bench` lists them.

Each bench is a module here with a `main()` that prints its figures and asserts nothing:
numbers depend on the machine, so they are for reading, not for CI to judge.
"""
