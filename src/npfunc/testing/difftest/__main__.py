"""``python -m npfunc.testing.difftest``: see :func:`npfunc.testing.difftest.main`."""
import sys

from .runner import main

if __name__ == "__main__":  # (not when a documentation tool imports every module)
    sys.exit(main())
