"""`python -m cohort` runs the command-line interface."""

from cohort.cli import main

main()
