import sys

from minigraph.cli import main

sys.exit(main())
