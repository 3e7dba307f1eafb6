"""Online and terminal payments: start them, apply provider events, capture into stamps, resolve unknowns."""
