"""``python -m npfunc.testing.difftest``: see :func:`npfunc.testing.difftest.main`."""
import sys

from .runner import main

sys.exit(main())
