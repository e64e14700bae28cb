"""The top-level package shows only its API: no helper names from its own implementation, lazy loading kept."""

import subprocess
import sys

CODE = """
import sys, lvmdiag
before = dir(lvmdiag)
heavy = sorted(m for m in ('torch', 'matplotlib', 'pandas', 'scipy', 'lvmdiag.api') if m in sys.modules)
print(repr((before, heavy, list(lvmdiag.__all__))))
lvmdiag.bias  # loads lvmdiag.api on first use
print(repr((dir(lvmdiag), callable(lvmdiag.data), callable(lvmdiag.bias))))
ns = {}
exec("from lvmdiag import *", ns)
print(repr(sorted(n for n in ns if n != "__builtins__")))
"""


def test_dir_shows_the_public_api_and_nothing_of_the_implementation():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout.splitlines()
    before, heavy, public = eval(out[0])
    after, data_callable, bias_callable = eval(out[1])
    star = eval(out[2])
    assert heavy == []  # dir() and the dunder __dir__ load nothing
    for names in (before, after):
        assert set(public) <= set(names)  # tab completion offers every API name, loaded or not
        assert not {"Any", "annotations", "importlib", "_API", "_CALLABLE_PACKAGES", "_import_module"} & set(names)
        assert all(not n.startswith("_") or (n.startswith("__") and n.endswith("__")) for n in names), names
    assert {"bias", "data", "leakage", "InputError", "__version__"} <= set(before)
    assert "api" in after and "api" not in before  # a sub-package shows up once imported, as in any package
    assert data_callable and bias_callable
    assert star == sorted(public)
