# gatebench in one small image: loadgen (the entrypoint), jwt-gateway and
# mock-upstream, statically linked against musl (its resolver reads the
# container's /etc/resolv.conf and /etc/hosts, as Kubernetes service names
# need), on an empty base, running as a non-root user.
#
#   docker build -t gatebench .                  # from source (needs the rust image)
#   docker run --rm gatebench --version
#   docker run --rm -v "$PWD:/work" gatebench run scenarios/steady.toml --out results/x
#
# Without a registry (air-gapped machines, CI here): build the static
# binaries with cargo and only package them:
#   deploy/container/build.sh                    # = --build-arg BINARIES=prebuilt
ARG BINARIES=from-source

# --- the binaries, built from this checkout
FROM docker.io/library/rust:1.95-bookworm AS from-source
ARG TARGETARCH
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/*
RUN case "${TARGETARCH:-amd64}" in \
        amd64) echo x86_64-unknown-linux-musl ;; \
        arm64) echo aarch64-unknown-linux-musl ;; \
        *) echo "unsupported architecture ${TARGETARCH}" >&2; exit 1 ;; \
    esac >/rust-target \
    && rustup target add "$(cat /rust-target)"
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target "$(cat /rust-target)" \
        -p loadgen -p gateway -p mock-upstream \
    && mkdir -p /out/usr/local/bin \
    && for b in loadgen jwt-gateway mock-upstream; do \
        cp "target/$(cat /rust-target)/release/$b" /out/usr/local/bin/ \
        && strip /out/usr/local/bin/$b; done \
    && mkdir -p /out/work /out/tmp

# --- or the binaries built outside (deploy/container/build.sh puts them in dist/)
FROM scratch AS prebuilt
COPY dist/ /out/

FROM ${BINARIES} AS binaries

# --- the image: three binaries, a writable /work and /tmp, nothing else
FROM scratch
COPY --from=binaries --chown=65532:65532 /out/ /
USER 65532:65532
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/loadgen"]
CMD ["--help"]
