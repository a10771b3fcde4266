"""statusflow: resolve provider message-status events to one nps.today status per CampaignMember."""

from importlib.metadata import PackageNotFoundError, version

# Registers every provider's vocabulary with the core before anything indexes the vocabularies
# (stream.domain.classify refuses a registration after that): see stream/providers/registry.py.
from stream.providers import registry as _registry  # noqa: F401

try:
    __version__ = version("statusflow")  # one place for the number: pyproject.toml
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
