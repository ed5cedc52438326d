"""Frontlas ("Frontier Atlas"): the stateless cluster registry of frontier-gevent.

Frontiers report to it which edges and services they hold (:mod:`frontlas.plane`);
it keeps all of it in Redis (:mod:`frontlas.store`) and answers the Go Frontlas'
``ClusterService`` over REST and gRPC (:mod:`frontlas.control`). Run it with
``frontlas-gevent serve`` (:mod:`frontlas.cli`); see ``docs/cluster.md``.
"""
