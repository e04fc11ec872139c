import sys

from vaultctl.cli import main

sys.exit(main())
