"""What every tangolab hardware device shares: the link, the poll loop, the states."""
