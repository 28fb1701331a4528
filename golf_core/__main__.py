"""``python -m golf_core`` runs the golf command."""
import sys

from .cli import main

sys.exit(main())
