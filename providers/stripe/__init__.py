"""Stripe: PaymentIntents through hosted Checkout, signed webhooks, refunds, disputes, and a local fake."""
