"""An interactive explorer of the SE theory: placeholder replaced below."""
