"""The ``memctl`` command line: one module per command; each command parses its options, calls
one library function and renders the result (no SQL here). The app is assembled in
:mod:`memctl.cli.app`; library modules are imported when a command runs, so ``--help`` is fast.
"""

from memctl.cli.app import app, main

__all__ = ["app", "main"]
