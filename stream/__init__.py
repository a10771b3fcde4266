"""statusflow: resolve provider message-status events to one nps.today status per CampaignMember."""

# Registers every provider's vocabulary with the core before anything indexes the vocabularies
# (stream.domain.classify refuses a registration after that): see stream/providers/registry.py.
from stream.providers import registry as _registry  # noqa: F401

__version__ = "0.1.0"
