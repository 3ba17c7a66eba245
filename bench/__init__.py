"""`make bench`: the service measured against the physical limits of the machine it runs on."""
