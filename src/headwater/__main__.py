"""`python -m headwater` runs the CLI."""

from headwater.faces.cli import main

main()
