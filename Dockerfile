# syntax=docker/dockerfile:1
# The image of every service: one Dockerfile, the service chosen by the build argument SERVICE.
# Build from the repository root (what is sent is restricted by Dockerfile.dockerignore):
#
#   docker build --build-arg SERVICE=intake -t motcua/intake:0.1.0 .      # and routing, signing…
#
# The build smoke-starts every process of the service (python -m motcua.check): a missing font,
# protobuf module, setting or import fails the build, not the pod. The Kubernetes manifests
# (deploy/) run it as user 10001 with a read-only root filesystem.
#
# Base image pinned by digest (the tag is only for the reader). To move to a newer one:
#   docker buildx imagetools inspect python:3.11-slim-bookworm     # the index digest
# then replace the digest here (tests/contract/test_deploy_manifests.py checks one is there).
# This one is the multi-platform index of the Docker Official Image built on 19 Sep 2026
# (Python 3.11.16, Debian bookworm), as docker-library/repo-info lists it at commit 40cdaf34
# (repos/python/remote/3.11-slim-bookworm.md); no registry is reachable from the development
# machines, so it was checked against that listing, not pulled.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
RUN test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<service>" >&2; exit 1; }
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Every package pinned. The lock also names this repository's own projects by their path on the
# machine that made it ("name @ file:///..."); those come from the build context instead.
COPY requirements/constraints.txt requirements/constraints.txt
RUN grep -v ' @ file://' requirements/constraints.txt > /tmp/constraints.txt
# Generated protobuf code is never committed: build it from protos/ into the shared kernel, with
# grpcio-tools kept in a venv of its own that the image does not ship.
RUN python -m venv /opt/protoc \
 && /opt/protoc/bin/pip install -c /tmp/constraints.txt grpcio-tools
COPY protos protos
COPY scripts/gen_protos.py scripts/gen_protos.py
COPY libs/motcua libs/motcua
RUN /opt/protoc/bin/python scripts/gen_protos.py --force
COPY services/${SERVICE} services/${SERVICE}
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install -c /tmp/constraints.txt ./libs/motcua ./services/${SERVICE}

FROM ${PYTHON_IMAGE}
ARG SERVICE
# The files the code opens from the OS at run time, by Debian package (the contract test
# tests/contract/test_deploy_manifests.py::test_the_image_installs_what_the_code_opens_from_the_os
# ties each path the code opens to a package here):
#   fonts-dejavu-core   /usr/share/fonts/truetype/dejavu  (PDF forms, drafts, registers: motcua.fonts)
#   softhsm2            /usr/lib/softhsm/libsofthsm2.so   (signing's default PKCS#11 module; a real HSM's
#                                                          module is mounted and named by MOTCUA_PKCS11_MODULE)
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-dejavu-core softhsm2 \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 motcua \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
    --shell /usr/sbin/nologin motcua
COPY --from=build /opt/venv /opt/venv
# The procedure catalog: outside the packages in the source tree, so copied and pointed at. Every
# process reads its units (which areas exist); intake reads all of it.
COPY services/intake/catalog /opt/motcua/catalog
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    IMAGE_SERVICE=${SERVICE}
ENV MOTCUA_CATALOG_PATH=/opt/motcua/catalog/thanh-hoa
# Not writable by the service user: without MOTCUA_MONGO_URI the embedded SQLite store
# (var/data) cannot be created, so a misconfigured pod fails at once instead of keeping data
# on an ephemeral disk.
WORKDIR /opt/motcua
# Numeric, so that Kubernetes can check runAsNonRoot.
USER 10001:10001
# Smoke-start every process of the service as the pod would (imports, settings, catalog, fonts,
# protobuf code, the operators' CLI), connecting to nothing.
RUN python -m motcua.check "${SERVICE}"
# The worker by default; the manifests name the module of each process (python -m <service>.entrypoints.api).
CMD ["/bin/sh", "-c", "exec python -m \"${IMAGE_SERVICE}.entrypoints.worker\""]
