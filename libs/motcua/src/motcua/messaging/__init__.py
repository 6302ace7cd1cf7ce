"""Messaging: the topology (names of exchanges and queues), the CloudEvents envelope of public
events, work messages between pipeline stages, publishing with confirms, the outbox and its relay,
and idempotent consumption with retry and parking."""
