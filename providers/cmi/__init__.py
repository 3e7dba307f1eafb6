"""CMI, Morocco's interbank gateway: hosted payment page, hashed callbacks, CC5 API, and a local fake."""
