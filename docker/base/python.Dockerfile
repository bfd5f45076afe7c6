# Stand-in for python:3.11-slim-bookworm, built from Debian bookworm's own packages by
# docker/base-images.sh (no registry needed). Only what docker/Dockerfile relies on:
#   * python, pip and venv: Debian's python3 is 3.11, the version durable-rules needs;
#   * Python.h (python3-dev): durable-rules compiles a C extension against it in the build stage;
#   * ca-certificates, so the build stage can add a proxy's CA (BUILD_CA_PEM) with update-ca-certificates;
#   * no EXTERNALLY-MANAGED marker: like the official image, pip installs into the system Python.
# Like the official image, no compiler: docker/Dockerfile's build stage installs gcc itself.
ARG BASE=fairpath-debian:bookworm
FROM ${BASE}
RUN apt-get update \
    && apt-get install --yes --no-install-recommends \
        python3 python3-dev python3-pip python3-venv python-is-python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
    && rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED
ENV LANG=C.UTF-8
CMD ["python3"]
