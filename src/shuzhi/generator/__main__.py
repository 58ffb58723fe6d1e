"""``python -m shuzhi.generator``: see :func:`shuzhi.generator.main`."""
import sys

from . import main

sys.exit(main())
