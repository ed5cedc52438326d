#!/bin/sh
# Regenerate the Python gRPC modules from controlplane.proto.
#   frontier/control/proto/generate.sh            (from anywhere; uses ./.venv/bin/python if present)
#   PYTHON=python3 frontier/control/proto/generate.sh
# Needs grpcio-tools. The generated *_pb2_grpc.py imports its *_pb2 as a top-level
# module; we rewrite that import to be package-relative so `frontier.control.proto`
# imports cleanly without touching sys.path.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
python=${PYTHON:-}
if [ -z "$python" ]; then
    if [ -x "$root/.venv/bin/python" ]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
cd "$here"
"$python" -m grpc_tools.protoc -I. \
    --python_out=. --pyi_out=. --grpc_python_out=. \
    controlplane.proto
sed -i.bak 's/^import controlplane_pb2 as controlplane__pb2$/from . import controlplane_pb2 as controlplane__pb2/' controlplane_pb2_grpc.py
rm -f controlplane_pb2_grpc.py.bak
grep -q '^from . import controlplane_pb2 as controlplane__pb2$' controlplane_pb2_grpc.py
echo "generated: $here/controlplane_pb2.py controlplane_pb2.pyi controlplane_pb2_grpc.py"
