"""The `fcgrad` command line: Typer commands (`app`) and their rendering (`render`)."""
