"""statusflow: resolve provider message-status events to one nps.today status per CampaignMember."""

__version__ = "0.1.0"
