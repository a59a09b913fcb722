"""A delivery's states, apart from ``notify.outbox`` so that the command line's parser
offers them without loading the outbox and its channels."""

STATES = ("pending", "sending", "delivered", "failed", "dead")
