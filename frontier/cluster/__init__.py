"""Running frontier as a cluster: reporting to Frontlas, and several worker processes per host.

:mod:`.protocol` is the frontier plane both sides speak, :mod:`.reporter` the
frontier's side of it, :mod:`.workers` ``frontier-gevent serve --workers N``.
Nothing here is imported unless ``frontlas.enable`` or ``--workers`` asks for it.
"""
