"""Every op test runs once per backend; CuPy runs skip with the reason where it is unusable."""
import os

import pytest

from minigraph.backend import unavailable_reason


@pytest.fixture(scope="module", autouse=True, params=["numpy", "cupy"])
def backend(request):
    """Make `request.param` the default backend of every Session the module's tests create."""
    reason = unavailable_reason(request.param)
    if reason:
        pytest.skip(f"{request.param} backend unavailable: {reason}")
    saved = os.environ.get("MINIGRAPH_BACKEND")
    os.environ["MINIGRAPH_BACKEND"] = request.param
    yield request.param
    if saved is None:
        os.environ.pop("MINIGRAPH_BACKEND", None)
    else:
        os.environ["MINIGRAPH_BACKEND"] = saved
