"""`python -m exporter` runs the exporter's command line (via `exporter.entry`, SIGHUP first)."""

import sys

from exporter.entry import main

sys.exit(main())
