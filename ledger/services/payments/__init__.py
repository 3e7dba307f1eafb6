"""Online and terminal payments: start them, apply provider events, capture into stamps, resolve unknowns."""

# Refund and dispute events, and unknown refund and void attempts, are the refunds service's: it registers
# its handlers with the event and resolver hooks whenever payments are used.
from ledger.services import refund_events

refund_events.install()
