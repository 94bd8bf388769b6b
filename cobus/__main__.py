"""``python -m cobus`` runs the command line."""

from .cli import main

main(prog_name="cobus")
