"""The sandbox provider: a local hosted-checkout and counter-terminal simulator with fault injection."""
