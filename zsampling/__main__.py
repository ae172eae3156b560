"""``python -m zsampling`` (also what ``accelerate launch -m zsampling`` runs)."""

from zsampling.cli import main

main()
