"""`python -m photodialog` runs the command-line interface."""

from photodialog.cli.main import main

raise SystemExit(main())
