"""``python -m stream`` is ``statusflow``."""

import sys

from stream.cli import main

sys.exit(main())
