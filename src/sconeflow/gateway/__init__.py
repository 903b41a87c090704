"""The local AWS-compatible gateway: one HTTP server on 127.0.0.1 routing AWS wire protocols."""
