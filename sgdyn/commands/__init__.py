"""One module per ``sgdyn`` command; see ``sgdyn.cli.COMMAND_MODULES``."""
