import sys

from ohttp.cli import main

sys.exit(main())
