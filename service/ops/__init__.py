"""Operator tools: the `sample-ledger` command line and what its commands do. The runtime never imports them."""
