"""`python -m agentroster` runs the CLI."""

from agentroster.cli import main

main()
