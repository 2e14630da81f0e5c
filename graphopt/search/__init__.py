"""How rewrites are chosen: sites (rule + where), policies that pick among them, the loop."""
