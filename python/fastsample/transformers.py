"""`fastsample.transformers`: the transformers integration under its short name (the code is in
fastsample.integrations.transformers)."""
from .integrations.transformers import *  # noqa: F401,F403
from .integrations.transformers import __all__  # noqa: F401
