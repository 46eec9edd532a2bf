"""Signals of the matcher, for whoever wants to know (evaluation counts review pairs; metrics count outcomes).

`match_decided(sender, domain, values, outcome)` is sent for every match() call, before the caller acts on it.
"""

from django.dispatch import Signal

match_decided = Signal()
