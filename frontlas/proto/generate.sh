#!/bin/sh
# Regenerate the Python gRPC modules from cluster.proto.
#   frontlas/proto/generate.sh            (from anywhere; uses ./.venv/bin/python if present)
#   PYTHON=python3 frontlas/proto/generate.sh
# Needs grpcio-tools. Compiled from the repository root, so the generated modules
# import each other as `frontlas.proto.cluster_pb2` and the descriptor is
# registered as "frontlas/proto/cluster.proto" (no clash with frontier's
# controlplane.proto, which shares the proto package).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python=${PYTHON:-}
if [ -z "$python" ]; then
    if [ -x "$root/.venv/bin/python" ]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
cd "$root"
"$python" -m grpc_tools.protoc -I. \
    --python_out=. --pyi_out=. --grpc_python_out=. \
    frontlas/proto/cluster.proto
grep -q '^from frontlas.proto import cluster_pb2' frontlas/proto/cluster_pb2_grpc.py
echo "generated: $here/cluster_pb2.py cluster_pb2.pyi cluster_pb2_grpc.py"
