"""`python -m fcgrad`: the same as the `fcgrad` command."""

from fcgrad.entry import main

main()
