"""``python -m cobus`` runs the command line (a plain ``run`` without loading click)."""

from .entry import main

main(prog_name="cobus")
