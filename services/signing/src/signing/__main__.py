import sys

from signing.entrypoints.cli import main

sys.exit(main())
