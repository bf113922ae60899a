"""`python -m sweepwise` runs the `sweepwise` command."""

from sweepwise._entry import main

main()
