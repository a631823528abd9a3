# The same binary as `cargo build --release`, in a slim runtime image.
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev libsqlite3-dev libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 libsqlite3-0 libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/passgate --create-home passgate
COPY --from=build /src/target/release/passgate /usr/local/bin/passgate
USER passgate
ENV PASSGATE_BIND=0.0.0.0:8080 \
    PASSGATE_DATA_DIR=/var/lib/passgate
VOLUME /var/lib/passgate
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 CMD ["passgate", "healthcheck"]
ENTRYPOINT ["passgate"]
CMD ["serve"]
