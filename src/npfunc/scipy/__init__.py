"""``npfunc.scipy``: SciPy functions that cannot dispatch to traced values on their own."""
