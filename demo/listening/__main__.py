"""``python -m demo.listening``: see ``demo.listening.cli``."""

import sys

from demo.listening.cli import main

sys.exit(main())
