"""``python -m multilevel`` runs the command-line interface."""

import sys

from multilevel.cli.main import main

sys.exit(main())
