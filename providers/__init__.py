"""Payment providers behind one interface, discovered through the etimbre.providers entry points."""
