"""`python -m photodialog` runs the command-line interface."""

import os
import sys

from photodialog.cli.main import main

code = main()
if code and "torch.distributed" in sys.modules and sys.modules["torch.distributed"].is_initialized():
    # A failed process of a multi-process run (its error already printed) leaves at once: tearing down
    # the process group's threads while the other processes still wait on it can abort the interpreter
    # (SIGABRT, "terminate called without an active exception"), which would hide the exit code that
    # says what went wrong (2: bad input) from torchrun and the user.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
raise SystemExit(code)
