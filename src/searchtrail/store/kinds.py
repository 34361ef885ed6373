"""Resource kinds (and well-known keys) that more than one package reads or writes.

Kept free of imports so that a command-line tool can name a kind without loading a service.
"""

TRAIL = "cloudtrail.trail"  # scope (owner account, ''), key = trail ARN
TRAIL_STATUS = "cloudtrail.trail-status"  # the delivery worker's outcomes, same scope and key
SETTING = "setting"  # global scope ('', '')
DEFAULT_ACCOUNT = "default-account"  # the SETTING naming the default (management) account
