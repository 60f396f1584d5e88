"""``python -m ebid.client ...``: the bidder's commands without the platform's app."""

from ebid.client.cli import main

main()
