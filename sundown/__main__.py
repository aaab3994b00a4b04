import sys

from sundown.cli import main

sys.exit(main())
