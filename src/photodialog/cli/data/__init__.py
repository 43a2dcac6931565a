"""`photodialog data ...`: make, fetch, check and count datasets, one module per subcommand
(listed in ``cli.main.DATA_COMMANDS``, each imported only when chosen)."""
