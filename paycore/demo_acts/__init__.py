"""The acts of `paycore demo`, told in order on one database (see `paycore.demo`)."""
