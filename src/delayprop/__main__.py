import sys

from delayprop.cli import main

sys.exit(main())
