import sys

from vaezoo.cli.main import main

sys.exit(main())
