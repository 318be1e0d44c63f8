import sys

from vla_eval.cli import main

sys.exit(main())
