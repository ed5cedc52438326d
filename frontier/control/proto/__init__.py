"""Generated gRPC modules of the control plane (see ``generate.sh``; do not edit them)."""
