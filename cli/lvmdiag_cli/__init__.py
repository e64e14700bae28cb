"""The ``lvmdiag`` command line: thin Typer commands over the lvmdiag library."""
