"""Suite-wide test setup: makes tests/_compare.py (the float-comparison policy) importable everywhere."""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
