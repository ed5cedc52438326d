"""Sans-io wire protocol of frontier: frames, events, the connection machine, errors."""
