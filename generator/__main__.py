"""``python -m generator``: the generator without the ``shopstream`` command (see generator.cli)."""
import sys

from generator.cli import main

sys.exit(main())
