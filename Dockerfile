# The production image of the Python services (vault_manager, balance_tracker, cpi_manager,
# monitor, gateway) and vaultctl; the command picks the service:
#   docker run IMAGE services.vault_manager
# Multi-stage: dependencies and generated gRPC stubs are built in the first stage; the
# runtime stage is slim and runs as an unprivileged user.
# No localnet/ and no development keys (program/keys, localnet/dev_keys): .dockerignore keeps
# them out of the build context and nothing here copies them (tests/deploy/test_image_contents.py).
# The services refuse the development ids by their public keys (config.DEVELOPMENT_KEYS), not
# by reading key files. The development chain (localnet, its cluster setup) has its own image:
# localnet/Dockerfile.

FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.lock pyproject.toml ./
RUN /opt/venv/bin/pip install -r requirements.lock
COPY proto ./proto
RUN mkdir -p gen/python \
 && /opt/venv/bin/python -m grpc_tools.protoc -I proto --python_out=gen/python --grpc_python_out=gen/python \
      proto/collateral_vault/v1/*.proto \
 && touch gen/python/collateral_vault/__init__.py gen/python/collateral_vault/v1/__init__.py
COPY vault_client ./vault_client
COPY services ./services
COPY vaultctl ./vaultctl
COPY migrations ./migrations
COPY program/idl ./program/idl
RUN /opt/venv/bin/pip install --no-deps .

FROM python:3.11.11-slim-bookworm AS runtime
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin app \
    && mkdir -p /var/lib/collateral-vault/spool && chown 10001 /var/lib/collateral-vault/spool
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/app:/app/gen/python PYTHONUNBUFFERED=1 GRPC_HOST=0.0.0.0 \
    GATEWAY_HOST=0.0.0.0 AUDIT_SPOOL_DIR=/var/lib/collateral-vault/spool
USER 10001
EXPOSE 50051 50052 50053 50054 8080 9101 9102 9103 9104
ENTRYPOINT ["python", "-m"]
CMD ["services.vault_manager"]
