# syntax=docker/dockerfile:1
# Build: docker build -t dli-exporter .
# Run:   docker run -p 9469:9469 -v $PWD/config.yaml:/etc/dli-exporter/config.yaml:ro \
#          -e HUAWEICLOUD_SDK_AK -e HUAWEICLOUD_SDK_SK dli-exporter
# Demo:  docker run -p 9469:9469 dli-exporter --demo

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
COPY scripts/build-venv.sh ./scripts/build-venv.sh
RUN ./scripts/build-venv.sh /opt/dli-exporter .

FROM python:3.11-slim
# Only the virtualenv is copied: no sources, tests or build tools in the final image.
COPY --from=build /opt/dli-exporter /opt/dli-exporter
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin dli-exporter
USER 10001:10001
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
EXPOSE 9469
# Plain HTTP on the default port; with --web.config.file TLS or basic auth, override it or list
# /-/healthy in unauthenticated_paths. No curl needed: the venv's Python does the request.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/opt/dli-exporter/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9469/-/healthy', timeout=4)"]
ENTRYPOINT ["/opt/dli-exporter/bin/dli-exporter"]
CMD ["--config.file=/etc/dli-exporter/config.yaml"]
