"""In-memory adapters: the fakes that unit tests of the core run on.

Each has a contract test suite that also runs against the real adapter.
"""
