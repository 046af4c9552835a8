"""``python3 -m guestboot`` is the ``guestboot`` command."""

import sys

from .cli.main import main

sys.exit(main())
