"""`python -m fcgrad`: the same as the `fcgrad` command."""

from fcgrad.cli import main

main()
