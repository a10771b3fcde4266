"""statusflow: resolve provider message-status events to one nps.today status per CampaignMember."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("statusflow")  # one place for the number: pyproject.toml
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
