import sys

from qnhw.cli import main

sys.exit(main())
