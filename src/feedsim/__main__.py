"""``python -m feedsim``: see :func:`feedsim.main`."""
import sys

from . import main

sys.exit(main())
