import sys

from vla_eval.cli.main import main

sys.exit(main())
