# The gateway image: one process per container, non-root, keys and data as volumes.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GATEWAY_MODE=production \
    GATEWAY_DATA_DIR=/var/lib/gateway \
    GATEWAY_KEYS_DIR=/var/lib/gateway-keys \
    GATEWAY_POLICIES_DIR=/opt/gateway/policies \
    GATEWAY_BIND=0.0.0.0:8080

RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid gateway --home-dir /nonexistent --shell /usr/sbin/nologin gateway \
 && mkdir -p /var/lib/gateway /var/lib/gateway-keys /var/lib/witness /opt/gateway \
 && chown gateway:gateway /var/lib/gateway /var/lib/gateway-keys /var/lib/witness \
 && chmod 0700 /var/lib/gateway /var/lib/gateway-keys /var/lib/witness

WORKDIR /opt/gateway
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY policies ./policies
RUN pip install --no-compile . && rm -rf /root/.cache

USER gateway
EXPOSE 8080
VOLUME ["/var/lib/gateway", "/var/lib/gateway-keys"]
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
CMD ["gateway", "serve"]
