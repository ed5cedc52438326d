"""Tests of the sans-io wire protocol (``frontier.wire``): no sockets anywhere."""
