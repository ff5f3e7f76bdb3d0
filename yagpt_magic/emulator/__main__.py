"""``python -m yagpt_magic.emulator --port P``: serve the emulator until interrupted."""

import sys

from .cli import main

sys.exit(main())
