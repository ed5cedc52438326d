# frontier-gevent, the gateway. Build from the repository root:
#   docker build -t frontier-gevent:0.1.0 .
#   docker run -d --name frontier -p 30010:30010 -p 30011:30011 -p 30012:30012 \
#       -v "$PWD/frontier.yaml:/usr/conf/frontier.yaml:ro" frontier-gevent:0.1.0
# Without a mounted file the image's dist/conf/frontier.yaml is used (control plane
# on 30010). SIGTERM drains for up to limits.drain_timeout: stop with a longer grace
# (docker stop -t 30). tests/deploy/test_images.py runs these install steps and this
# entry point outside Docker.
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# the package (frontier and frontlas) and its dependencies; all have wheels, no compiler
WORKDIR /build
COPY pyproject.toml setup.cfg README.md ./
COPY frontier ./frontier
COPY frontlas ./frontlas
RUN pip install . && rm -rf /build

RUN groupadd --system --gid 10001 frontier \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin frontier
COPY dist/conf/frontier.yaml /usr/conf/frontier.yaml

WORKDIR /
USER 10001:10001
# control plane (REST + gRPC, /healthz, /readyz, /metrics), services, edges,
# and Go's observability listener (/healthz, /readyz, /metrics; on without the control plane too)
EXPOSE 30010 30011 30012 9091
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9091/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["frontier-gevent"]
CMD ["serve", "--config", "/usr/conf/frontier.yaml"]
